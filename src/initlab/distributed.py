"""Shard-local initialisation of DTensor parameters (FSDP2 ``fully_shard``, tensor parallel).

Each rank fills only the elements it owns, computed from their *global* indices with the
parameter's keyed stream, so the gathered tensor is bit-identical to a single-process
``initialize`` for any world size and any supported layout (pytorch issue 168058 is the
opposite). The fill is the same :func:`initlab.apply.fill_row` as everywhere else, with a
DTensor's local shard as the target and its global window as the index.

Supported layouts: a 1-D device mesh with placement ``Shard(d)`` (any dim, uneven sizes
included: DTensor's ``torch.chunk`` rule, ceil(n / world) per rank, the last ranks shorter
or empty) or ``Replicate()``. The window is computed here from the mesh coordinate and the
placement (not from torch's private ``compute_local_shape_and_global_offset``) and checked
against the local tensor's shape, so a layout that disagrees raises instead of writing
wrong values. ``Partial``, strided shards (``_StridedShard``) and meshes of 2 or more
dimensions raise :class:`ShardingError` before anything is written.

Communication: none. Element-wise schemes (uniform, normal, trunc_normal, variance scaling,
torch_default, constants...) generate only the local elements. Whole-matrix schemes
(orthogonal, eye, dirac, zero_hadamard, sparse, custom, and ``trunc_normal(method='torch')``)
cannot: every rank generates the full tensor in its own memory and keeps its window, which
is still bit-identical and needs no communication, but costs the full tensor's time and
memory on each rank. Such parameters are listed in ``report.notes`` and announced once with a
:class:`FullTensorNotice` warning.

Entry points: ``initlab.initialize`` and ``initlab.materialize`` detect DTensor parameters
by themselves; :func:`initialize_sharded` is the explicit spelling that first checks the
process group and works on a model whether its shards are still on meta or not.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .report import InitReport, ParamRow

if TYPE_CHECKING:
    from .plan import PolicyLike
    from .rng import RandomSource

__all__ = [
    "FullTensorNotice",
    "ShardingError",
    "check_sharded",
    "empty_sharded",
    "fill_sharded",
    "initialize_sharded",
    "is_dtensor",
    "shard_window",
]


class ShardingError(ValueError):
    """A sharded layout initlab does not support, or no initialised process group."""


class FullTensorNotice(UserWarning):
    """Some sharded parameters use a whole-matrix scheme: each rank generated the full tensor."""


def is_dtensor(t: object) -> bool:
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor``.

    Imports nothing: no DTensor can exist before ``torch.distributed.tensor`` is imported,
    and importing it costs about a second (it pulls in torch._dynamo).
    """
    mod = sys.modules.get("torch.distributed.tensor")
    dtensor = getattr(mod, "DTensor", None)
    return dtensor is not None and isinstance(t, dtensor)


def _require_process_group(what: str) -> None:
    if not torch.distributed.is_available():
        raise ShardingError(f"{what}: this torch build has no torch.distributed")
    if not torch.distributed.is_initialized():
        raise ShardingError(
            f"{what}: the default process group is not initialised; call "
            "torch.distributed.init_process_group(...) (e.g. under torchrun) first"
        )


def check_sharded(name: str, param: Any) -> None:
    """Raise :class:`ShardingError` unless ``param`` has a layout initlab fills shard-locally."""
    from torch.distributed.tensor import Replicate, Shard

    _require_process_group(f"parameter {name!r} is a DTensor")
    mesh, placements = param.device_mesh, tuple(param.placements)
    if mesh.ndim != 1:
        raise ShardingError(
            f"parameter {name!r}: device meshes with {mesh.ndim} dimensions are not supported "
            f"(placements {placements}); initlab supports a 1-D mesh with Shard(d) or Replicate()"
        )
    for p in placements:
        if type(p) not in (Shard, Replicate):
            raise ShardingError(
                f"parameter {name!r}: placement {p!r} is not supported (only Shard(d) and "
                "Replicate(); Partial and strided shards have no per-element window)"
            )
    if mesh.get_coordinate() is None:
        raise ShardingError(f"parameter {name!r}: this rank is not part of its device mesh")


def shard_window(param: Any) -> tuple[slice, ...]:
    """The global index window (one slice per dim) of this rank's local shard of ``param``.

    ``Shard(d)`` over ``w`` ranks follows DTensor's ``torch.chunk`` rule: rank ``r`` holds
    rows ``[r*c, min((r+1)*c, n))`` of dim ``d`` with ``c = ceil(n / w)`` (empty past ``n``).
    The result is checked against the local tensor's shape.
    """
    from torch.distributed.tensor import Shard

    shape = tuple(param.shape)
    window = [slice(0, n) for n in shape]
    mesh = param.device_mesh
    coord = mesh.get_coordinate()
    for mesh_dim, p in enumerate(param.placements):
        if isinstance(p, Shard):
            d, world, rank = p.dim % len(shape), mesh.size(mesh_dim), coord[mesh_dim]
            n = shape[d]
            chunk = -(-n // world)
            start = min(rank * chunk, n)
            window[d] = slice(start, min(start + chunk, n))
    local = tuple(param._local_tensor.shape)
    want = tuple(s.stop - s.start for s in window)
    if local != want:
        raise ShardingError(
            f"DTensor of shape {shape} with placements {tuple(param.placements)}: the local "
            f"shard has shape {local}, but the layout implies {want}; this sharding is not "
            "supported"
        )
    return tuple(window)


def fill_sharded(
    row: ParamRow, param: Any, source: RandomSource, module: nn.Module | None = None
) -> None:
    """Fill this rank's shard of the DTensor ``param`` with its window of ``row``'s values."""
    from .apply import fill_row

    window = shard_window(param)
    full = all(s.start == 0 and s.stop == n for s, n in zip(window, row.shape, strict=True))
    with torch.no_grad():
        local = param._local_tensor
        fill_row(row, local, source, index=None if full else window, module=module)


def empty_sharded(param: Any, device: torch.device, dtype: torch.dtype | None) -> Tensor:
    """A DTensor like the (meta) ``param``: same mesh, placements, global shape and stride,
    with an uninitialised local shard of this rank's shape on ``device``."""
    from torch.distributed.tensor import DTensor

    mesh = param.device_mesh
    if device.type != mesh.device_type:
        raise ShardingError(
            f"the DTensor parameters live on a {mesh.device_type!r} device mesh; "
            f"materialise them with device={mesh.device_type!r}, not {str(device)!r}"
        )
    local_meta = param._local_tensor
    local = torch.empty(local_meta.shape, dtype=dtype or param.dtype, device=device)
    return DTensor.from_local(
        local, mesh, tuple(param.placements), run_check=False,
        shape=param.shape, stride=param.stride(),
    )  # fmt: skip


def full_generation_rows(report: InitReport, names: Iterable[str]) -> list[str]:
    """Of the sharded rows ``names``, those whose scheme generates the whole tensor."""
    names = set(names)
    out = []
    for r in report.rows:
        if r.qualname not in names or r.status not in ("planned", "partial", "initialized"):
            continue
        schemes = ([r.scheme] if r.scheme is not None else []) + [
            s for _, _, s in r.block_overrides
        ]
        if any(not s.elementwise for s in schemes):
            out.append(r.qualname)
    return out


def note_full_generation(report: InitReport, names: Iterable[str]) -> None:
    """Record (``report.notes``) and announce the sharded rows generated as a full tensor."""
    full = full_generation_rows(report, names)
    notes: list[str] = list(report.notes)
    if full:
        msg = (
            f"{len(full)} sharded parameter(s) use a whole-matrix scheme and were generated as "
            f"the full tensor on every rank, then cut to the local shard (bit-identical, no "
            f"communication, full-tensor time and memory per rank): {', '.join(full)}"
        )
        notes.append(msg)
        warnings.warn(msg, FullTensorNotice, stacklevel=3)
    report.notes = notes


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
        initlab.distributed.initialize_sharded(model, "gpt2:n_layers=12", seed=0)

    Parameters still on the meta device are materialised (allocated on ``device``, by default
    the device mesh's device type) and filled; a model whose shards already have storage is
    filled in place. Parameter objects are kept (``torch.utils.swap_tensors``), as FSDP2
    requires. Raises :class:`ShardingError` without an initialised process group.
    """
    _require_process_group("initialize_sharded")
    params = list(model.parameters())
    if any(p.is_meta for p in params) or any(b.is_meta for b in model.buffers()):
        from .materialize import materialize

        if device is None:
            dt = [p for p in params if is_dtensor(p)]
            device = dt[0].device_mesh.device_type if dt else "cpu"
        return materialize(model, policy, seed, device=device, **kwargs)
    from .apply import initialize

    return initialize(model, policy, seed, **kwargs)
