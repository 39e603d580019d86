"""The executor: one loop that fills a plan into a target, all or nothing.

``execute(model, policy, seed, target)`` is what every front end runs (``initialize``,
``materialize``, ``write_checkpoint``, sharded init): it checks the seed, plans, checks every
row against the model's tensors (dtype, random source, sharded layout) before anything is
written, creates one random source per row, fills each row into the tensor the target hands
it (a DTensor parameter's local shard with its global window), measures the achieved std,
shows progress, and asks the target to commit only once every row is filled; on any failure
the target aborts and nothing it owns has changed.

A :class:`Target` says, for each row, which tensor to fill (``open``), what to do with it
once filled (``put``), and how to make everything visible at once (``commit``) or drop it
(``abort``). Ties are planned once (``plan``), so a tied parameter is one row.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..plan import PolicyLike, plan
from ..report import InitReport, ParamRow
from ..rng import TorchSource
from .fill import fill_row, row_achieved_std, row_stream
from .shard import check_sharded, is_dtensor, local_window, note_full_generation

#: the statuses the executor fills: planned rows, and the covered blocks of partial rows
FILLED = ("planned", "partial")


class Target(Protocol):
    """Where the executor's rows go. Nothing a target owns may change before ``commit``.

    The executor calls ``check`` once, then ``open``/``put`` for each row, then ``commit``
    (or ``abort`` on any error). The targets: :class:`~initlab.execute.inplace.InPlace`
    (``initialize``), :class:`~initlab.execute.meta.OnMeta` (``materialize``) and the
    safetensors writer (``write_checkpoint``).

    Example:
        >>> from torch import nn
        >>> from initlab.execute.inplace import InPlace
        >>> [n for n in ("check", "open", "put", "commit", "abort") if hasattr(InPlace(), n)]
        ['check', 'open', 'put', 'commit', 'abort']
    """

    #: the floating dtype the target allocates (None: each parameter's own)
    dtype: torch.dtype | None

    def check(self, report: InitReport, params: dict[str, Tensor], sharded: set[str]) -> None:
        """Raise, before anything is written, if the planned rows cannot go to this target."""
        ...

    def open(self, row: ParamRow, local: Tensor) -> Tensor:
        """The tensor to fill for ``row``, shaped like ``local`` (the parameter, or its local
        shard): staging memory, never the model's own storage."""
        ...

    def put(self, row: ParamRow, param: Tensor, filled: Tensor) -> dict[str, Any]:
        """Stage the filled tensor of ``row``; return fields to update in its report row."""
        ...

    def commit(self, report: InitReport) -> None:
        """Make every staged tensor visible at once (cannot fail half-way)."""
        ...

    def abort(self) -> None:
        """Drop what was staged: the model (or folder) stays as it was."""
        ...


def check_seed(seed: int) -> int:
    """``seed`` if it is an int in ``[0, 2**64)``, else a ValueError naming it.

    Args:
        seed: the seed of the keyed streams (a bool is refused).

    Example:
        >>> check_seed(3)
        3
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    return seed


def strip_prefix(name: str, prefix: str) -> str:
    """``name`` relative to the module named ``prefix`` (the model being filled).

    Args:
        name: a qualified name inside the larger model.
        prefix: the qualified name of the model being filled (``""``: the whole model).

    Returns:
        ``name`` without ``prefix.``; ``""`` for the prefix itself; ``name`` unchanged when it
        lies outside ``prefix``.

    Example:
        >>> strip_prefix("encoder.0.weight", "encoder"), strip_prefix("head.bias", "encoder")
        ('0.weight', 'head.bias')
    """
    if not prefix:
        return name
    if name == prefix:
        return ""
    return name[len(prefix) + 1 :] if name.startswith(prefix + ".") else name


def execute(
    model: nn.Module,
    policy: PolicyLike,
    seed: int,
    target: Target,
    *,
    strict: bool = False,
    exclude: Iterable[str] = (),
    prefix: str = "",
    rng: str = "keyed",
    generator: torch.Generator | None = None,
    measure: bool = True,
    progress: bool = False,
) -> InitReport:
    """Plan ``model`` by ``policy`` and fill every planned row into ``target``, all or nothing.

    Args:
        model: the model whose parameters are planned (their storage is the target's affair).
        policy: a Policy, preset name, policy file path or dict.
        seed: the seed of the per-parameter streams (``rng="keyed"``).
        target: where the values go (:class:`Target`).
        strict, exclude, prefix: as for :func:`initlab.plan`.
        rng: ``"keyed"`` (streams keyed by (seed, name)) or ``"torch"`` (one torch.Generator
            in parameter order).
        generator: the generator for ``rng="torch"`` (None: torch's global RNG).
        measure: record each row's achieved std (whole tensors only; None for shards).
        progress: show a progress bar over bytes (rich) on the terminal.

    Returns:
        The report, each filled row with status "initialized" (a partial row keeps
        "partial") and its achieved std.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> from initlab.execute.inplace import InPlace
        >>> m = nn.Linear(4, 3)
        >>> report = execute(m, "kaiming", 0, InPlace())  # what initlab.initialize runs
        >>> [(r.qualname, r.status) for r in report.rows]
        [('weight', 'initialized'), ('bias', 'initialized')]
        >>> eager = nn.Linear(4, 3)
        >>> _ = initlab.initialize(eager, "kaiming", 0)
        >>> torch.equal(m.weight, eager.weight)
        True
    """
    if rng not in ("keyed", "torch"):
        raise ValueError(f"rng must be 'keyed' or 'torch', got {rng!r}")
    if rng == "keyed":
        check_seed(seed)
        if generator is not None:
            raise ValueError("generator= is only used with rng='torch'")
    report = plan(model, policy, seed if rng == "keyed" else None, strict=strict,
                  exclude=exclude, prefix=prefix)  # fmt: skip
    report.rng = rng
    params = {(f"{prefix}.{n}" if prefix else n): p for n, p in model.named_parameters()}
    rows = [r for r in report.rows if r.status in FILLED]
    for row in rows:
        _check_row(row, params[row.qualname], rng)
    sharded = {r.qualname for r in rows if is_dtensor(params[r.qualname])}
    for name in sorted(sharded):
        check_sharded(name, params[name])
    if sharded and rng != "keyed":
        raise ValueError(
            "sharded (DTensor) parameters need rng='keyed': a torch.Generator "
            "cannot generate one shard of a tensor alone"
        )
    target.check(report, params, sharded)

    modules = dict(model.named_modules(remove_duplicate=False))
    torch_source = TorchSource(generator) if rng == "torch" else None
    total = sum(_nbytes(params[r.qualname], target.dtype) for r in rows)
    done: dict[str, ParamRow] = {}
    try:
        with _Progress(progress, total) as advance:
            for row in rows:
                param = params[row.qualname]
                source = torch_source or row_stream(row, measure=measure)
                local, index = local_window(param) if row.qualname in sharded else (param, None)
                staged = target.open(row, local)
                module = modules.get(strip_prefix(row.module_name, prefix))
                try:
                    with torch.no_grad():
                        fill_row(row, staged, source, index=index, module=module)
                except Exception as e:
                    raise named_error(e, row) from e
                std = row_achieved_std(row, staged, source) if measure and index is None else None
                # the global std of a shard would need communication
                fields = target.put(row, param, staged)
                status = "initialized" if row.status == "planned" else row.status
                done[row.qualname] = dataclasses.replace(
                    row, status=status, achieved_std=std, **fields
                )
                advance(_nbytes(param, target.dtype))
                del staged
        report.rows = [done.get(r.qualname, r) for r in report.rows]
        target.commit(report)
    except BaseException:
        target.abort()
        raise
    if sharded:
        note_full_generation(report, sharded)
    return report


def _nbytes(param: Tensor, dtype: torch.dtype | None) -> int:
    itemsize = (dtype if dtype is not None and param.is_floating_point() else param.dtype).itemsize
    return math.prod(param.shape) * itemsize


def _check_row(row: ParamRow, param: Tensor, rng: str) -> None:
    """What can be known about filling ``param`` before any tensor is written."""
    for rule_id, scheme in row.schemes():
        if not param.is_floating_point() and not scheme.deterministic:
            raise TypeError(
                f"parameter {row.qualname!r} (rule {rule_id}, scheme {scheme.name}): a random "
                "scheme needs a floating-point tensor, but the parameter has dtype "
                f"{str(param.dtype).removeprefix('torch.')}; exclude it or give it a "
                "deterministic scheme (zeros, ones, constant...)"
            )
        try:
            scheme.check_source(rng)
        except Exception as e:
            raise named_error(e, row, rule_id) from e


def named_error(e: Exception, row: ParamRow, rule_id: str | None = None) -> Exception:
    """``e`` again (same type when it can be rebuilt from a message), prefixed with the
    parameter and rule it happened for.

    Args:
        e: the error raised while filling ``row``.
        row: the report row being filled.
        rule_id: the rule to name (default: the row's own rule, or its block overrides').

    Returns:
        The new exception (a RuntimeError when ``type(e)`` takes no message), to raise
        ``from e``.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> row = initlab.plan(nn.Linear(4, 3), "kaiming").rows[0]
        >>> e = named_error(ValueError("std must be > 0"), row)
        >>> print(type(e).__name__, e)
        ValueError parameter 'weight' (rule weight): std must be > 0
    """
    rule_id = rule_id or row.rule_id or row.override_rules or "?"
    msg = f"parameter {row.qualname!r} (rule {rule_id}): {e}"
    try:
        return type(e)(msg)
    except Exception:
        return RuntimeError(msg)


class _Progress:
    """A rich progress bar over bytes (or nothing)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self) -> Callable[[int], Any]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("initialising"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
        self.bar.__enter__()
        task = self.bar.add_task("init", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


__all__ = ["FILLED", "Target", "check_seed", "execute", "named_error", "strip_prefix"]
