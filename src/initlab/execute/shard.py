"""Shard-local initialisation of DTensor parameters (FSDP2 ``fully_shard``, tensor parallel).

Each rank fills only the elements it owns, computed from their *global* indices with the
parameter's keyed stream, so the gathered tensor is bit-identical to a single-process
``initialize`` for any world size and any supported layout (pytorch issue 168058 is the
opposite). The executor fills a DTensor's local shard with the same
:func:`initlab.execute.fill.fill_row` as everywhere else, with the shard's global window
(:func:`local_window`) as the index.

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
by themselves (the executor asks this module); ``initlab.initialize_sharded``
(:mod:`initlab.execute.fsdp`) is the explicit spelling.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..report import InitReport

__all__ = [
    "FullTensorNotice",
    "ShardingError",
    "as_local_layout",
    "check_sharded",
    "is_dtensor",
    "local_window",
    "require_process_group",
    "shard_window",
]


class ShardingError(ValueError):
    """A sharded layout initlab does not support, or no initialised process group.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> try:
        ...     initlab.initialize_sharded(nn.Linear(2, 2), "kaiming", 0)  # no process group
        ... except initlab.ShardingError as e:
        ...     print(type(e).__name__, e)
        ShardingError initialize_sharded: the default process group is not initialised; call
        torch.distributed.init_process_group(...) (e.g. under torchrun) first
    """


class FullTensorNotice(UserWarning):
    """Some sharded parameters use a whole-matrix scheme: each rank generated the full tensor.

    A ``UserWarning`` subclass, issued once per call; the parameters are also listed in
    ``report.notes``. The values are still bit-identical to a single-process run, so a caller
    that accepts the cost can silence it.

    Example:
        >>> import warnings, initlab
        >>> issubclass(initlab.FullTensorNotice, UserWarning)
        True
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("ignore", initlab.FullTensorNotice)
        ...     warnings.warn("orthogonal on a shard", initlab.FullTensorNotice)
        >>> seen
        []
    """


def is_dtensor(t: object) -> bool:
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor``.

    Imports nothing: no DTensor can exist before ``torch.distributed.tensor`` is imported,
    and importing it costs about a second (it pulls in torch._dynamo).

    Args:
        t: any object.

    Returns:
        True for a DTensor (a sharded or replicated parameter), else False.

    Example:
        >>> import torch
        >>> is_dtensor(torch.zeros(2)), is_dtensor(None)
        (False, False)
    """
    mod = sys.modules.get("torch.distributed.tensor")
    dtensor = getattr(mod, "DTensor", None)
    return dtensor is not None and isinstance(t, dtensor)


def require_process_group(what: str) -> None:
    """Raise :class:`ShardingError` unless torch.distributed has an initialised process group.

    Args:
        what: the caller, named at the start of the message.

    Example:
        >>> try:
        ...     require_process_group("initialize_sharded")
        ... except ShardingError as e:
        ...     print(e)
        initialize_sharded: the default process group is not initialised; call
        torch.distributed.init_process_group(...) (e.g. under torchrun) first
    """
    if not torch.distributed.is_available():
        raise ShardingError(f"{what}: this torch build has no torch.distributed")
    if not torch.distributed.is_initialized():
        raise ShardingError(
            f"{what}: the default process group is not initialised; call "
            "torch.distributed.init_process_group(...) (e.g. under torchrun) first"
        )


def check_sharded(name: str, param: Any) -> None:
    """Raise :class:`ShardingError` unless ``param`` has a layout initlab fills shard-locally.

    Supported: a 1-D device mesh this rank belongs to, with placement ``Shard(d)`` or
    ``Replicate()``, under an initialised process group.

    Args:
        name: the parameter's qualified name, for the message.
        param: the DTensor parameter.

    Example:
        >>> import torch, torch.distributed as dist
        >>> from torch.distributed.device_mesh import init_device_mesh
        >>> from torch.distributed.tensor import Shard, distribute_tensor
        >>> from torch.testing._internal.distributed.fake_pg import FakeStore
        >>> dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
        >>> try:  # rank 1 of 2 holds rows 3..4 of 5
        ...     w = distribute_tensor(torch.zeros(5, 3), init_device_mesh("cpu", (2,)), [Shard(0)])
        ...     check_sharded("w", w)  # a supported layout: returns None
        ... finally:
        ...     dist.destroy_process_group()
        >>> try:
        ...     check_sharded("w", w)
        ... except ShardingError as e:
        ...     print(e)
        parameter 'w' is a DTensor: the default process group is not initialised; call
        torch.distributed.init_process_group(...) (e.g. under torchrun) first
    """
    from torch.distributed.tensor import Replicate, Shard

    require_process_group(f"parameter {name!r} is a DTensor")
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

    Args:
        param: a DTensor with a supported layout (see :func:`check_sharded`).

    Returns:
        One step-1 slice per dimension, in global coordinates. :class:`ShardingError` when the
        local shard's shape disagrees with the layout.

    Example:
        >>> import torch, torch.distributed as dist
        >>> from torch.distributed.device_mesh import init_device_mesh
        >>> from torch.distributed.tensor import Shard, distribute_tensor
        >>> from torch.testing._internal.distributed.fake_pg import FakeStore
        >>> dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
        >>> try:  # rank 1 of 2 holds rows 3..4 of 5
        ...     w = distribute_tensor(torch.zeros(5, 3), init_device_mesh("cpu", (2,)), [Shard(0)])
        ...     print(shard_window(w))
        ... finally:
        ...     dist.destroy_process_group()
        (slice(3, 5, None), slice(0, 3, None))
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


def local_window(param: Any) -> tuple[Tensor, tuple[slice, ...] | None]:
    """This rank's local shard of the DTensor ``param`` and its global window (None when
    the shard is the whole tensor, e.g. ``Replicate()`` or a world of one).

    Args:
        param: a DTensor with a supported layout (see :func:`check_sharded`).

    Returns:
        ``(local_tensor, window)``; see :func:`shard_window`.

    Example:
        >>> import torch, torch.distributed as dist
        >>> from torch.distributed.device_mesh import init_device_mesh
        >>> from torch.distributed.tensor import Shard, distribute_tensor
        >>> from torch.testing._internal.distributed.fake_pg import FakeStore
        >>> dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
        >>> try:  # rank 1 of 2 holds rows 3..4 of 5
        ...     w = distribute_tensor(torch.zeros(5, 3), init_device_mesh("cpu", (2,)), [Shard(0)])
        ...     local, window = local_window(w)
        ... finally:
        ...     dist.destroy_process_group()
        >>> tuple(local.shape), window
        ((2, 3), (slice(3, 5, None), slice(0, 3, None)))
    """
    window = shard_window(param)
    full = all(s.start == 0 and s.stop == n for s, n in zip(window, param.shape, strict=True))
    return param._local_tensor, None if full else window


def as_local_layout(param: Any, local: Tensor) -> Tensor:
    """``local`` laid out as ``param``: when ``param`` is a DTensor, a DTensor with its mesh,
    placements, global shape and stride whose local shard is ``local``; else ``local``.

    Args:
        param: the parameter whose layout to copy (a DTensor or a plain tensor).
        local: this rank's values, shaped like ``param``'s local shard.

    Returns:
        The tensor to set on the model in place of ``param``.

    Example:
        >>> import torch, torch.distributed as dist
        >>> from torch.distributed.device_mesh import init_device_mesh
        >>> from torch.distributed.tensor import Shard, distribute_tensor
        >>> from torch.testing._internal.distributed.fake_pg import FakeStore
        >>> dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
        >>> try:  # rank 1 of 2 holds rows 3..4 of 5
        ...     w = distribute_tensor(torch.zeros(5, 3), init_device_mesh("cpu", (2,)), [Shard(0)])
        ...     d = as_local_layout(w, torch.ones(2, 3))
        ... finally:
        ...     dist.destroy_process_group()
        >>> type(d).__name__, tuple(d.shape), tuple(d.to_local().shape)
        ('DTensor', (5, 3), (2, 3))
        >>> as_local_layout(torch.zeros(2), torch.ones(2))  # a plain tensor: ``local`` itself
        tensor([1., 1.])
    """
    if not is_dtensor(param):
        return local
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        local, param.device_mesh, tuple(param.placements), run_check=False,
        shape=param.shape, stride=param.stride(),
    )  # fmt: skip


def full_generation_rows(report: InitReport, names: Iterable[str]) -> list[str]:
    """Of the sharded rows ``names``, those whose scheme generates the whole tensor."""
    names = set(names)
    out = []
    for r in report.rows:
        if r.qualname not in names or r.status not in ("planned", "partial", "initialized"):
            continue
        if any(not s.elementwise for _, s in r.schemes()):
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
