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
from .plan import PolicyLike, plan
from .report import InitReport, ParamRow
from .rng import RandomSource, TorchSource
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
    are never touched; an Embedding's ``padding_idx`` row stays zero.

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
        if row.status == "planned" and params[row.qualname].is_meta:
            raise ValueError(
                f"parameter {row.qualname!r} is on the meta device: it has no storage to fill. "
                "Use initlab.plan() for a dry run, or materialise the model first"
            )
    torch_source = TorchSource(generator) if rng == "torch" else None
    modules = dict(model.named_modules(remove_duplicate=False))
    new_rows = []
    for row in report.rows:
        if row.status != "planned":
            new_rows.append(row)
            continue
        param = params[row.qualname]
        source = torch_source if torch_source is not None else KeyedStream(seed, row.qualname)
        _fill_row(row, param, source)
        _keep_structure(row, param, modules.get(_strip(row.module_name, prefix)))
        new_rows.append(dataclasses.replace(row, status="initialized", achieved_std=_std(param)))
    report.rows = new_rows
    return report


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
    """Constraints layers rely on: an Embedding's padding_idx row stays zero."""
    if (
        isinstance(module, (nn.Embedding, nn.EmbeddingBag))
        and row.param_name == "weight"
        and module.padding_idx is not None
    ):
        with torch.no_grad():
            param[module.padding_idx].zero_()


def _std(t: Tensor) -> float | None:
    if t.numel() < 2 or not t.is_floating_point():
        return None
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
    ``index`` (a tuple of slices), only that window is generated for element-wise schemes.
    """
    if row.seed is None:
        raise ValueError(f"{row.qualname}: the report was made with rng='torch'; nothing to key")
    if row.scheme is None and not row.block_overrides:
        raise ValueError(f"{row.qualname}: status {row.status!r}, no scheme to regenerate")
    stream = KeyedStream(row.seed, row.stream_name)
    if index is None:
        out = torch.empty(row.shape, dtype=dtype, device=device)
        _fill_row(row, out, stream)
        return out
    if row.block_overrides:  # block overrides write over the whole: build it, then cut
        return regenerate(row, dtype=dtype, device=device)[index].clone()
    assert row.scheme is not None
    from .schemes.base import _normalise_index

    idx = _normalise_index(index, row.shape)
    out = torch.empty(tuple(s.stop - s.start for s in idx), dtype=dtype, device=device)
    return row.scheme.fill_window(out, row.shape, idx, row.fans, stream)


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

    def fn(module: nn.Module) -> None:
        if names is None:
            initialize(module, policy, seed, **kwargs)
            return
        if id(module) not in names:
            raise ValueError(f"{type(module).__name__} is not a submodule of the given root")
        own = {n for n, _ in module.named_parameters(recurse=False)}
        if not own:
            return
        prefix = names[id(module)]
        keep = tuple(f"{prefix}.{n}" if prefix else n for n in own)
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
