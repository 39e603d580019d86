"""The one fill: a planned row written into a tensor, or into a window of the global tensor.

Every target of the executor (a model's own parameter, a fresh tensor for a meta parameter, a
DTensor's local shard, a tensor on its way to a file) ends in :func:`fill_row`; the report's
rows can be rebuilt alone by :func:`regenerate`, with the same streams (:func:`row_stream`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..fans import Fans
from ..layers import keep_structure_
from ..plan import uncovered_blocks
from ..report import ParamRow
from ..rng import RandomSource
from ..schemes import Scheme
from ..schemes.base import _normalise_index, block_window
from ..streams import KeyedStream

#: elements per windowed fill call: the stream builds int64 index arrays (16 bytes/element)
#: for a window, so a large shard is filled in pieces to keep that scratch small
WINDOW_PIECE = 1 << 22


def row_stream(row: ParamRow, *, measure: bool = False) -> KeyedStream:
    """The keyed stream of a row: ``KeyedStream(row.seed, row.stream_name)``.

    With ``measure`` the stream sums what whole fills write, for :func:`achieved_std`.

    Args:
        row: a row of a report made with ``rng="keyed"`` (ValueError otherwise).
        measure: record the sums of whole fills.

    Returns:
        A fresh :class:`~initlab.streams.stream.KeyedStream` at draw 0.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> row = initlab.plan(nn.Linear(4, 3), "xavier", seed=7).rows[0]
        >>> s = row_stream(row)
        >>> type(s).__name__, row.seed, row.stream_name
        ('KeyedStream', 7, 'weight')
    """
    if row.seed is None:
        raise ValueError(f"{row.qualname}: the report was made with rng='torch'; nothing to key")
    stream = KeyedStream(row.seed, row.stream_name)
    stream.measure = measure
    return stream


def fill_row(
    row: ParamRow,
    target: Tensor,
    source: RandomSource,
    *,
    index: tuple[slice, ...] | None = None,
    module: nn.Module | None = None,
) -> Tensor:
    """Write one planned row into ``target``: the one fill every target of the executor uses.

    The row's scheme fills the parameter (its packed blocks one by one when the scheme reads
    fans), then each block override fills its block from ``source.fork("block:<name>")``;
    last, the layer's structure is kept (an Embedding's ``padding_idx`` row stays zero).

    Args:
        row: a planned row (scheme, block overrides, fans).
        target: the tensor to write: the whole parameter, or the window ``full[index]``.
        source: the row's random source (:func:`row_stream`); a window needs an
            addressable source (a KeyedStream).
        index: None for the whole parameter, else a tuple of step-1 slices (one per
            dimension) in global coordinates: ``target`` then receives exactly those values
            of the full tensor, bit for bit (element-wise schemes generate only them).
        module: the owning module, for the constraints layers rely on.

    Returns:
        ``target``.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> row = initlab.plan(nn.Linear(4, 3), "kaiming", seed=0)["weight"]
        >>> full = initlab.fill_row(row, torch.empty(3, 4), row_stream(row))
        >>> part = initlab.fill_row(row, torch.empty(1, 4), row_stream(row),
        ...                         index=(slice(1, 2), slice(0, 4)))
        >>> torch.equal(part, full[1:2])
        True
    """
    idx = None if index is None else _normalise_index(index, row.shape)
    fill_values(row, target, source, idx)
    if row.shape:
        keep_structure_(
            target, row.param_name, module, row.fans, rows=row.shape[0],
            start=0 if idx is None else idx[0].start,
        )  # fmt: skip
    return target


def fill_values(
    row: ParamRow, target: Tensor, source: RandomSource, index: tuple[slice, ...] | None
) -> None:
    """The row's scheme and block overrides into ``target`` (no layer constraint).

    Args:
        row: a planned row.
        target: the tensor to write: the whole parameter, or the window ``full[index]``.
        source: the row's random source; a window needs an addressable one (a KeyedStream).
        index: None for the whole parameter, else normalised step-1 slices, one per dimension.

    Returns:
        None; ``target`` holds the values. A window gets exactly the values of the whole fill.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> m = nn.Linear(64, 32)
        >>> row = initlab.initialize(m, "xavier", 0).rows[0]
        >>> rows_8_to_12 = torch.empty(4, 64)
        >>> fill_values(row, rows_8_to_12, row_stream(row), (slice(8, 12), slice(0, 64)))
        >>> torch.equal(rows_8_to_12, m.weight[8:12])
        True
    """
    if index is not None and not source.addressable:
        raise TypeError("filling a window of a parameter needs a keyed source (rng='keyed')")
    if row.scheme is not None:
        if index is None:
            row.scheme(target, row.fans, source)
        else:
            _fill_window(row.scheme, target, row.shape, index, row.fans, source)
    for o in row.overrides():
        blk, sub = o.block, source.fork(f"block:{o.block.name}")
        if index is None:
            o.scheme(target.narrow(blk.dim, blk.start, blk.size), o.fans, sub)
            continue
        part = block_window(blk, row.shape, index)
        if part is not None:
            start, length, _, block_index = part
            region = target.narrow(blk.dim, start, length)
            _fill_window(o.scheme, region, o.shape, block_index, o.fans, sub)


def _fill_window(
    scheme: Scheme,
    target: Tensor,
    shape: tuple[int, ...],
    idx: tuple[slice, ...],
    fans: Fans | None,
    stream: RandomSource,
) -> None:
    """``scheme.fill_window``, in slabs along the window's first dim for element-wise schemes
    (every slab replays the same draws, so the values are those of one call)."""
    n = target.numel()
    if not scheme.elementwise or n <= WINDOW_PIECE or target.dim() == 0:
        scheme.fill_window(target, shape, idx, fans, stream)
        return
    rows = target.shape[0]
    step = max(1, WINDOW_PIECE // max(1, n // rows))
    first = stream.draw  # type: ignore[attr-defined]  # addressable sources count draws
    for a in range(0, rows, step):
        b = min(a + step, rows)
        stream.draw = first  # type: ignore[attr-defined]
        piece = (slice(idx[0].start + a, idx[0].start + b), *idx[1:])
        scheme.fill_window(target[a:b], shape, piece, fans, stream)


def achieved_std(t: Tensor, source: RandomSource | None = None) -> float | None:
    """The sample std of a just-filled tensor.

    From the sums a measuring source took while it wrote all of ``t`` (when nothing has
    written to ``t`` since), else one more pass over ``t``:
    ``sqrt(sum((x - mean)^2) / (n - 1))``. None below 2 elements or for integer tensors.

    Args:
        t: the tensor just filled.
        source: the random source that filled it, when it measured what it wrote
            (``measure = True``); None to measure ``t`` itself.

    Returns:
        The sample std as a float, or None.

    Example:
        >>> import torch, initlab
        >>> s = initlab.KeyedStream(0, "w"); s.measure = True
        >>> t = s.normal_(torch.empty(10_000), 0.0, 2.0)
        >>> round(initlab.achieved_std(t, s), 1)
        2.0
    """
    if t.numel() < 2 or not t.is_floating_point():
        return None
    if source is not None:
        std = source.achieved_std(t)
        if std is not None:
            return std
    with torch.no_grad():
        return float(t.detach().float().std())


def row_achieved_std(row: ParamRow, t: Tensor, source: RandomSource) -> float | None:
    """The achieved std of the elements the row's own scheme wrote (override blocks left out,
    as the row's target std leaves them out); None without a whole-parameter scheme.

    Args:
        row: the filled row.
        t: the tensor it was filled into.
        source: the source that filled it (its sums are used when it measured a whole fill).

    Returns:
        The sample std (see :func:`achieved_std`), or None.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> row = initlab.plan(nn.Linear(64, 32), "xavier").rows[0]
        >>> s = row_stream(row, measure=True)
        >>> t = torch.empty(row.shape)
        >>> fill_values(row, t, s, None)
        >>> round(row_achieved_std(row, t, s), 3), round(row.target_std, 3)  # sqrt(2 / 96)
        (0.143, 0.144)
    """
    if row.scheme is None:
        return None
    overrides = row.overrides()
    if not overrides:
        return achieved_std(t, source)
    keep = torch.ones(t.shape, dtype=torch.bool, device=t.device)
    for o in overrides:
        keep.narrow(o.block.dim, o.block.start, o.block.size).fill_(False)
    return achieved_std(t.detach()[keep])


def regenerate(
    row: ParamRow,
    index: tuple[slice | int, ...] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Rebuild one parameter (or a window of it) from its report row alone.

    The row carries the scheme, fans, seed and stream name, so the result equals what
    ``initialize`` wrote (before the padding-row constraint, which needs the module). With
    ``index`` (a tuple of step-1 slices and ints), only that window is generated for
    element-wise schemes; an int entry drops its dimension, as ``full[index]`` would.

    Args:
        row: a row of a report made with ``rng="keyed"``.
        index: None (the whole parameter) or the window to generate.
        dtype, device: of the returned tensor.

    Returns:
        A new tensor: the parameter, or ``parameter[index]``.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> lin = nn.Linear(4, 3)
        >>> row = initlab.initialize(lin, "kaiming", seed=0)["weight"]
        >>> torch.equal(initlab.regenerate(row), lin.weight), torch.equal(
        ...     initlab.regenerate(row, (1,)), lin.weight[1])
        (True, True)
    """
    if row.scheme is None and not row.block_overrides:
        raise ValueError(f"{row.qualname}: status {row.status!r}, no scheme to regenerate")
    missing = uncovered_blocks(row)
    if missing:
        raise ValueError(
            f"{row.qualname}: block(s) {', '.join(missing)} have no rule (status "
            f"{row.status!r}); their values are not defined by the report"
        )
    stream = row_stream(row)
    if index is None:
        out = torch.empty(row.shape, dtype=dtype, device=device)
        fill_values(row, out, stream, None)
        return out
    idx = _normalise_index(index, row.shape)
    # an int entry drops its dimension, as in torch indexing
    keep = tuple(
        0 if isinstance(i, int) and not isinstance(i, bool) else slice(None)
        for i in (index if isinstance(index, tuple) else (index,))
    )
    out = torch.empty(tuple(s.stop - s.start for s in idx), dtype=dtype, device=device)
    fill_values(row, out, stream, idx)
    return out[keep]
