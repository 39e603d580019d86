"""The fill: ``initialize`` writes a plan into a model; ``regenerate`` rebuilds one parameter.

Randomness comes from a stream per parameter keyed by (seed, qualified parameter name)
(:class:`~initlab.streams.KeyedStream`), never from torch's global RNG, whose state
``initialize`` neither reads nor changes. Hence:

* the same seed gives a bit-identical model and another seed other values;
* adding, removing or reordering other modules leaves every other parameter bit-identical;
  renaming a parameter (or the module that holds it) changes its values;
* initialising one submodule at a time (with ``prefix=``) equals initialising the whole model;
* values do not depend on torch's thread count, and any slice of a parameter can be
  generated alone (``regenerate(..., index=...)``).

``rng="torch"`` instead draws from a ``torch.Generator`` (or the global RNG) in parameter
order, for people who need torch.nn.init's own numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from .fans import Fans
from .layers import keep_structure_, padding_row
from .plan import PolicyLike, plan, uncovered_blocks
from .report import InitReport, ParamRow
from .rng import RandomSource, TorchSource
from .schemes import Scheme
from .streams import KeyedStream


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    return seed


def initialize(
    model: nn.Module,
    policy: PolicyLike,
    seed: int = 0,
    *,
    strict: bool = False,
    exclude: Iterable[str] = (),
    prefix: str = "",
    rng: str = "keyed",
    generator: torch.Generator | None = None,
) -> InitReport:
    """Initialise ``model``'s parameters by ``policy`` and return the report.

    Every parameter is planned and validated before any tensor is written: a bad rule, a
    scheme that cannot fill a shape, or (with ``strict=True``) an unmatched parameter raises
    with the model untouched. Tied parameters are initialised once and stay tied; buffers
    are never touched; an Embedding's ``padding_idx`` row stays zero. DTensor parameters
    (FSDP2, tensor parallel) are filled shard-locally: each rank writes the elements it owns,
    bit-identical to the same elements of a single-process init (see ``initlab.distributed``).

    Args:
        model: the model (not on the meta device; see ``plan`` for a dry run).
        policy: a Policy, a preset name (``"kaiming"``, ``"gpt2:n_layers=12"``...), a policy
            file path (YAML, TOML, JSON) or a dict.
        seed: the seed of the per-parameter streams.
        strict: raise, listing every unmatched parameter, instead of leaving them.
        exclude: qualified-parameter-name patterns to leave alone (e.g. loaded weights).
        prefix: the qualified name of ``model`` inside a larger model (see module docs). A
            parameter tied across submodules is named after its first owner in the whole
            model; when initialising submodules one by one, exclude its later aliases.
        rng: ``"keyed"`` (default, per-parameter streams) or ``"torch"`` (a torch.Generator
            in parameter order, torch.nn.init's numbers).
        generator: the generator for ``rng="torch"`` (None: torch's global RNG).
    """
    if rng not in ("keyed", "torch"):
        raise ValueError(f"rng must be 'keyed' or 'torch', got {rng!r}")
    if rng == "keyed":
        _check_seed(seed)
        if generator is not None:
            raise ValueError("generator= is only used with rng='torch'")
    report = plan(model, policy, seed if rng == "keyed" else None, strict=strict,
                  exclude=exclude, prefix=prefix)  # fmt: skip
    report.rng = rng
    params = dict(_named_params(model, prefix))
    for row in report.rows:
        if row.status in _FILLED:
            _check_target(row, params[row.qualname], rng)
    sharded = _sharded_rows(report, params)
    if sharded and rng != "keyed":
        raise ValueError(
            "sharded (DTensor) parameters need rng='keyed': a torch.Generator "
            "cannot generate one shard of a tensor alone"
        )
    torch_source = TorchSource(generator) if rng == "torch" else None
    modules = dict(model.named_modules(remove_duplicate=False))
    new_rows = []
    for row in report.rows:
        if row.status not in _FILLED:
            new_rows.append(row)
            continue
        param = params[row.qualname]
        source = torch_source if torch_source is not None else _measured_stream(seed, row)
        module = modules.get(_strip(row.module_name, prefix))
        try:
            if row.qualname in sharded:  # a DTensor: fill this rank's shard from global indices
                from .distributed import fill_sharded

                fill_sharded(row, param, source, module)
                std = None  # the global std would need communication
            else:
                fill_row(row, param, source, module=module)
                std = achieved_std(param, source)
        except Exception as e:
            raise _named_error(e, row) from e
        # a partial row (only some blocks had a rule) keeps its status: the rest was left
        status = "initialized" if row.status == "planned" else row.status
        new_rows.append(dataclasses.replace(row, status=status, achieved_std=std))
    report.rows = new_rows
    if sharded:
        from .distributed import note_full_generation

        note_full_generation(report, sharded)
    return report


#: the statuses ``initialize`` writes: planned rows, and the covered blocks of partial rows
_FILLED = ("planned", "partial")


def _row_schemes(row: ParamRow) -> list[tuple[str, Scheme]]:
    """(rule id, scheme) of the whole-parameter scheme and of every block override."""
    out = [] if row.scheme is None else [(row.rule_id or "?", row.scheme)]
    return out + [(f"{rid} (block {b})", s) for b, rid, s in row.block_overrides]


def _check_target(row: ParamRow, param: Tensor, rng: str) -> None:
    """Everything that can be known about filling ``param`` before any tensor is written."""
    if param.is_meta:
        raise ValueError(
            f"parameter {row.qualname!r} is on the meta device: it has no storage to fill. "
            "Use initlab.plan() for a dry run, or materialise the model first"
        )
    for rule_id, scheme in _row_schemes(row):
        where = f"parameter {row.qualname!r} (rule {rule_id}, scheme {scheme.name})"
        if not param.is_floating_point() and not scheme.deterministic:
            raise TypeError(
                f"{where}: a random scheme needs a floating-point tensor, but the parameter "
                f"has dtype {str(param.dtype).removeprefix('torch.')}; exclude it or give it "
                "a deterministic scheme (zeros, ones, constant...)"
            )
        check = getattr(scheme, "check_source", None)
        if check is not None:
            try:
                check(rng)
            except Exception as e:
                raise _named_error(e, row, rule_id) from e


def _named_error(e: Exception, row: ParamRow, rule_id: str | None = None) -> Exception:
    """``e`` again (same type when it can be rebuilt from a message), prefixed with the
    parameter and rule it happened for."""
    rule_id = rule_id or row.rule_id or ", ".join(r for _, r, _ in row.block_overrides) or "?"
    msg = f"parameter {row.qualname!r} (rule {rule_id}): {e}"
    try:
        return type(e)(msg)
    except Exception:
        return RuntimeError(msg)


def _strip(name: str, prefix: str) -> str:
    if not prefix:
        return name
    return (
        name[len(prefix) + 1 :]
        if name.startswith(prefix + ".")
        else ("" if name == prefix else name)
    )


def _named_params(model: nn.Module, prefix: str) -> Iterable[tuple[str, nn.Parameter]]:
    for name, p in model.named_parameters():
        yield (f"{prefix}.{name}" if prefix else name), p


def _sharded_rows(report: InitReport, params: dict[str, nn.Parameter]) -> set[str]:
    """The planned rows whose parameter is a DTensor (checked: supported layout, live group)."""
    from .distributed import check_sharded, is_dtensor

    names = {r.qualname for r in report.rows
             if r.status in _FILLED and is_dtensor(params[r.qualname])}  # fmt: skip
    for name in names:
        check_sharded(name, params[name])
    return names


def fill_row(
    row: ParamRow,
    target: Tensor,
    source: RandomSource,
    *,
    index: tuple[slice, ...] | None = None,
    module: nn.Module | None = None,
) -> Tensor:
    """Write one planned row into ``target``: the one fill every front end uses.

    ``initialize`` (a model's own parameter), ``materialize`` (a fresh tensor for a meta
    parameter), sharded init (a DTensor's local shard) and streaming checkpoints (a tensor on
    its way to a file) all call this with a different target.

    Args:
        row: a planned row (scheme, block overrides, fans).
        target: the tensor to write: the whole parameter, or the window ``full[index]``.
        source: the row's random source (``KeyedStream(row.seed, row.stream_name)``); a
            window needs a KeyedStream.
        index: None for the whole parameter, else a tuple of step-1 slices (one per
            dimension) in global coordinates: ``target`` then receives exactly those values
            of the full tensor, bit for bit (element-wise schemes generate only them).
        module: the owning module, for the constraints layers rely on (an Embedding's
            ``padding_idx`` row stays zero).
    """
    if index is None:
        _fill_row(row, target, source)
        _keep_structure(row, target, module)
        return target
    if not isinstance(source, KeyedStream):
        raise TypeError("filling a window of a parameter needs a KeyedStream (rng='keyed')")
    from .schemes.base import _normalise_index

    idx = _normalise_index(index, row.shape)
    pad = _padding_row(row, module)
    if row.scheme is not None:
        _fill_window(row.scheme, target, row.shape, idx, row.fans, source)
    for block, _, scheme in row.block_overrides:
        fans = row.fans
        assert fans is not None
        blk = next(b for b in fans.blocks if b.name == block)
        want = idx[blk.dim]
        lo, hi = max(want.start, blk.start), min(want.stop, blk.stop)
        if lo >= hi:
            continue
        region = target.narrow(blk.dim, lo - want.start, hi - lo)
        shape, sub_idx = list(row.shape), list(idx)
        shape[blk.dim], sub_idx[blk.dim] = blk.size, slice(lo - blk.start, hi - blk.start)
        sub = source.fork(f"block:{block}")
        _fill_window(scheme, region, tuple(shape), tuple(sub_idx), _block_fans(fans, block), sub)
    if pad is not None and idx and idx[0].start <= pad < idx[0].stop:
        with torch.no_grad():
            target[pad - idx[0].start].zero_()
    return target


#: elements per windowed fill call: the stream builds int64 index arrays (16 bytes/element)
#: for a window, so a large shard is filled in pieces to keep that scratch small
WINDOW_PIECE = 1 << 22


def _fill_window(
    scheme: Scheme,
    target: Tensor,
    shape: tuple[int, ...],
    idx: tuple[slice, ...],
    fans: Fans | None,
    stream: KeyedStream,
) -> None:
    """``scheme.fill_window``, in slabs along the window's first dim for element-wise schemes
    (every slab replays the same draws, so the values are those of one call)."""
    n = target.numel()
    if not scheme.elementwise or n <= WINDOW_PIECE or target.dim() == 0:
        scheme.fill_window(target, shape, idx, fans, stream)
        return
    rows = target.shape[0]
    step = max(1, WINDOW_PIECE // max(1, n // rows))
    first = stream.draw
    for a in range(0, rows, step):
        b = min(a + step, rows)
        stream.draw = first
        piece = (slice(idx[0].start + a, idx[0].start + b), *idx[1:])
        scheme.fill_window(target[a:b], shape, piece, fans, stream)


def _fill_row(row: ParamRow, param: Tensor, source: RandomSource) -> None:
    if row.scheme is not None:
        row.scheme(param, row.fans, source)
    for block, _, scheme in row.block_overrides:
        fans = row.fans
        assert fans is not None
        blk = next(b for b in fans.blocks if b.name == block)
        region = param.narrow(blk.dim, blk.start, blk.size)
        sub = source.fork(f"block:{block}") if isinstance(source, KeyedStream) else source
        scheme(region, _block_fans(fans, blk.name), sub)


def _block_fans(fans: Fans, block: str) -> Fans:
    blk = next(b for b in fans.blocks if b.name == block)
    return dataclasses.replace(fans.for_block(blk), blocks=())


def _keep_structure(row: ParamRow, param: Tensor, module: nn.Module | None) -> None:
    """Constraints layers rely on: an Embedding's padding_idx row stays zero (the registry)."""
    keep_structure_(param, row.param_name, module, row.fans)


def _padding_row(row: ParamRow, module: nn.Module | None) -> int | None:
    """The row index (>= 0) the layer keeps at zero (an Embedding's padding_idx), or None.

    From the module when given, else from the fans (the layer registry decides)."""
    return padding_row(row.param_name, row.shape[0] if row.shape else 0, module, row.fans)


def _measured_stream(seed: int, row: ParamRow) -> KeyedStream:
    """The row's stream, set to take the sums its fills need for the achieved std."""
    stream = KeyedStream(seed, row.qualname)
    stream.measure = True
    return stream


def achieved_std(t: Tensor, source: RandomSource | None = None) -> float | None:
    """The sample std of a just-filled tensor: from the sums a measured KeyedStream took
    while it wrote all of ``t`` (when nothing has written to ``t`` since), else one more
    pass over ``t``. None below 2 elements or for integer tensors."""
    if t.numel() < 2 or not t.is_floating_point():
        return None
    if isinstance(source, KeyedStream):
        std = source.achieved_std(t)
        if std is not None:
            return std
    with torch.no_grad():
        return float(t.detach().float().std())


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
    """
    if row.seed is None:
        raise ValueError(f"{row.qualname}: the report was made with rng='torch'; nothing to key")
    if row.scheme is None and not row.block_overrides:
        raise ValueError(f"{row.qualname}: status {row.status!r}, no scheme to regenerate")
    missing = uncovered_blocks(row)
    if missing:
        raise ValueError(
            f"{row.qualname}: block(s) {', '.join(missing)} have no rule (status "
            f"{row.status!r}); their values are not defined by the report"
        )
    stream = KeyedStream(row.seed, row.stream_name)
    if index is None:
        out = torch.empty(row.shape, dtype=dtype, device=device)
        _fill_row(row, out, stream)
        return out
    from .schemes.base import _normalise_index

    idx = _normalise_index(index, row.shape)
    # an int entry drops its dimension, as in torch indexing (on both paths below)
    keep = tuple(
        0 if isinstance(i, int) and not isinstance(i, bool) else slice(None)
        for i in (index if isinstance(index, tuple) else (index,))
    )
    if row.block_overrides:  # block overrides write over the whole: build it, then cut
        return regenerate(row, dtype=dtype, device=device)[idx][keep].clone()
    assert row.scheme is not None
    out = torch.empty(tuple(s.stop - s.start for s in idx), dtype=dtype, device=device)
    return row.scheme.fill_window(out, row.shape, idx, row.fans, stream)[keep]


def as_apply_fn(
    policy: PolicyLike, seed: int = 0, *, root: nn.Module | None = None, **kwargs: Any
) -> Callable[[nn.Module], None]:
    """A function for ``model.apply(fn)``, for code that keeps that idiom.

    ``model.apply`` visits children before their parent and the root last, and gives ``fn``
    no names. With ``root=model`` each call initialises only the module's own parameters,
    keyed by their names in ``root``. Without ``root``, each call initialises the module's
    whole subtree with names relative to it; the last call (the root) therefore leaves the
    model exactly as ``initialize(model, policy, seed)`` would (at the cost of repeating work
    for nested modules).
    """
    names = {id(m): n for n, m in root.named_modules()} if root is not None else None
    # a tied parameter is filled once, by the module of its first name in ``root``
    canon = {id(p): n for n, p in root.named_parameters()} if root is not None else {}

    def fn(module: nn.Module) -> None:
        if names is None:
            initialize(module, policy, seed, **kwargs)
            return
        if id(module) not in names:
            raise ValueError(f"{type(module).__name__} is not a submodule of the given root")
        prefix = names[id(module)]
        keep = tuple(
            full
            for n, p in module.named_parameters(recurse=False)
            if canon.get(id(p)) == (full := f"{prefix}.{n}" if prefix else n)
        )
        if not keep:
            return
        exclude = _others(module, prefix, keep)
        initialize(module, policy, seed, prefix=prefix, exclude=exclude, **kwargs)

    return fn


def _others(module: nn.Module, prefix: str, keep: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for n, _ in module.named_parameters():
        full = f"{prefix}.{n}" if prefix else n
        if full not in keep:
            out.append(_literal(full))
    return tuple(out)


def _literal(name: str) -> str:
    """An exclude pattern that matches exactly ``name``."""
    import re

    return "re:" + re.escape(name)
