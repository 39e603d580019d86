"""The sharded front end: ``initialize_sharded``, the FSDP2 recipe in one call.

It checks the process group, then hands a model whose DTensor shards are still on meta to
``materialize`` and a model whose shards have storage to ``initialize``; both fill each
rank's shard from its global window (:mod:`initlab.execute.shard`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..plan import PolicyLike
from ..report import InitReport
from .inplace import initialize
from .meta import materialize
from .shard import is_dtensor, require_process_group

__all__ = ["initialize_sharded"]


def initialize_sharded(
    model: nn.Module,
    policy: PolicyLike,
    seed: int = 0,
    *,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> InitReport:
    """Initialise a sharded model shard-locally (the FSDP2 recipe)::

        with initlab.meta_build():  # or torch.device("meta")
            model = build()
        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        initlab.initialize_sharded(model, "gpt2:n_layers=12", seed=0)

    Parameters still on the meta device are materialised (allocated on ``device``, by default
    the device mesh's device type) and filled; a model whose shards already have storage is
    filled in place. Parameter objects are kept (``torch.utils.swap_tensors``), as FSDP2
    requires. Raises :class:`ShardingError` without an initialised process group. All or
    nothing, as ``initialize`` and ``materialize``: a failing fill on any rank's shard leaves
    that rank's model as it was (other ranks may have committed; the error names the
    parameter on the rank where it happened).

    Args:
        model: the model, its parameters DTensors (or plain tensors, filled whole).
        policy: a Policy, preset name, policy file path or dict.
        seed: the seed of the per-parameter streams.
        device: where shards still on meta are allocated (None: the mesh's device type).
        **kwargs: further ``materialize``/``initialize`` arguments.

    Returns:
        The report (the achieved std of sharded rows is None: it would need communication).

    Example:
        >>> import torch, initlab
        >>> with torch.device("meta"):
        ...     model = torch.nn.Linear(4, 4)
        >>> try:
        ...     initlab.initialize_sharded(model, "kaiming")
        ... except initlab.ShardingError as e:
        ...     print(str(e).split(";")[0])
        initialize_sharded: the default process group is not initialised
    """
    require_process_group("initialize_sharded")
    params = list(model.parameters())
    if any(p.is_meta for p in params) or any(b.is_meta for b in model.buffers()):
        if device is None:
            dt = [p for p in params if is_dtensor(p)]
            device = dt[0].device_mesh.device_type if dt else "cpu"
        return materialize(model, policy, seed, device=device, **kwargs)
    return initialize(model, policy, seed, **kwargs)
