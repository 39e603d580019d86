"""Learning-rate transfer, measured: Tensor Programs V's Figure 1 at CPU scale.

Yang et al. 2022 ("Tensor Programs V", https://arxiv.org/abs/2203.03466, Figure 1) train a
model family at several widths over a grid of learning rates: under the standard
parametrisation (SP) the best learning rate moves as the model widens, under muP it stays put,
so one tuned on a narrow model is right for a wide one. :func:`lr_sweep` runs that grid,
widths x learning rates (a x2 grid, ``2**k`` for integer k) x seeds, under ``sp`` and ``mup``
(:mod:`initlab.lab.width`; the muP base is the narrowest width), and records each run's final
training loss. For each width the *optimal* learning rate is the grid point with the lowest
loss averaged over seeds (:func:`optimal_log2_lr`); the learning rate *transfers* when the
optima of at least :data:`MIN_WIDTHS` widths lie within one grid step of each other
(:func:`transfer`).

Tasks (:data:`TASKS`):

``digits``
    the lab's MLP ``mlp:widths={width}-{width}`` (two hidden layers) on scikit-learn's digits,
    ``steps`` Adam updates on batches drawn by the seed, loss on the whole training set. The
    runs of one width (learning rates x seeds) train as one stacked network
    (:class:`~initlab.lab.stacked.StackedNet`, batched matmuls), with an element-wise Adam whose
    learning rate is a vector over the runs, the equations of ``torch.optim.Adam`` otherwise.
``text``
    a character-level GPT-2 (``hf:gpt2``, 2 layers, 4 heads, built from its config, untied
    readout, no dropout) on the Python standard library's sources
    (:mod:`initlab.lab.data.text`), next-token cross-entropy, loss on 8 fixed training batches
    after the last step; one run at a time.

A run whose loss is not finite is *diverged* and never optimal.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import load_dataset
from .data.text import load_stdlib_text, text_batch
from .groups import torch_threads
from .stacked import StackedNet
from .width import (
    DEFAULT_FAMILIES,
    PARAMETRISATIONS,
    WidthError,
    build_member,
    group_optimizer,
    prepare,
)

__all__ = [
    "MIN_WIDTHS",
    "TASKS",
    "Cell",
    "LRSweep",
    "Task",
    "lr_sweep",
    "optimal_log2_lr",
    "parse_log2_range",
    "transfer",
]

# read once per process: every run of a sweep trains on the same text
_text = functools.lru_cache(maxsize=4)(load_stdlib_text)

#: widths whose optima must agree for the learning rate to transfer
MIN_WIDTHS = 4
#: parameters x runs trained together in one stacked group (fp32: x4 with grads and moments)
_GROUP_FLOATS = 60_000_000


@dataclasses.dataclass(frozen=True)
class Task:
    """A learning-rate sweep task and its defaults.

    Attributes:
        name: ``digits`` or ``text``.
        model: the family's spec template.
        widths: default widths.
        log2_lrs: default grid, ``(lowest, highest)`` exponents of 2.
        steps: optimizer updates per run.
        batch_size: examples (sequences) per step.
        seeds: default number of seeds.
        seq_len: tokens per sequence (text only).

    Example:
        >>> TASKS["digits"].widths
        (64, 128, 256, 512, 1024, 2048)
    """

    name: str
    model: str
    widths: tuple[int, ...]
    log2_lrs: tuple[int, int]
    steps: int
    batch_size: int
    seeds: int
    seq_len: int = 0


TASKS: dict[str, Task] = {
    "digits": Task(
        "digits", DEFAULT_FAMILIES["mlp"], (64, 128, 256, 512, 1024, 2048), (-14, -4), 100, 32, 2
    ),
    "text": Task(
        "text", DEFAULT_FAMILIES["hf:gpt2"], (32, 64, 128, 256), (-13, -4), 100, 16, 1, 64
    ),
}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid and its final training loss (NaN: diverged).

    Attributes:
        parametrisation: ``sp`` or ``mup``.
        width: the width.
        log2_lr: the learning rate is ``2 ** log2_lr``.
        seed: the seed (init and batches).
        loss: the final training loss.

    Example:
        >>> Cell("mup", 256, -7, 0, 0.05).key
        ('mup', 256, -7, 0)
    """

    parametrisation: str
    width: int
    log2_lr: int
    seed: int
    loss: float

    @property
    def key(self) -> tuple[str, int, int, int]:
        """``(parametrisation, width, log2_lr, seed)``."""
        return self.parametrisation, self.width, self.log2_lr, self.seed


def parse_log2_range(text: str) -> list[int]:
    """``"-14:-4"`` -> ``[-14, -13, ..., -4]``: a x2 grid of learning rates by exponent.

    Args:
        text: ``LOW:HIGH``, integer exponents of 2, ``LOW < HIGH``.

    Returns:
        The exponents.

    Raises:
        WidthError: not two integers, or not increasing.

    Example:
        >>> parse_log2_range("-3:-1")
        [-3, -2, -1]
    """
    low, colon, high = str(text).partition(":")
    try:
        lo, hi = int(low), int(high)
    except ValueError:
        lo = hi = 0
        colon = ""
    if not colon or lo >= hi:
        raise WidthError(
            f"learning-rate grid must be LOW:HIGH exponents of 2 with LOW < HIGH "
            f"(e.g. -14:-4), got {text!r}"
        )
    return list(range(lo, hi + 1))


def optimal_log2_lr(losses: dict[int, float]) -> int | None:
    """The grid point with the lowest finite loss (None when every run diverged).

    Args:
        losses: ``{log2_lr: loss}`` (NaN or inf: diverged).

    Returns:
        The exponent of the optimal learning rate.

    Example:
        >>> optimal_log2_lr({-5: 0.9, -4: 0.3, -3: float("nan"), -2: 0.5})
        -4
    """
    finite = {k: v for k, v in losses.items() if math.isfinite(v)}
    return min(finite, key=lambda k: (finite[k], k)) if finite else None


def transfer(optima: dict[int, int | None], min_widths: int = MIN_WIDTHS) -> dict[str, Any]:
    """Does the optimal learning rate stay put across widths?

    It *holds* when at least ``min_widths`` widths have an optimum and all of them lie within
    one grid step of each other (``max - min <= 1`` in exponents of 2).

    Args:
        optima: ``{width: optimal log2_lr or None}``.
        min_widths: how many widths must agree.

    Returns:
        ``{"holds": bool, "spread": max - min, "shift": optimum at the widest minus at the
        narrowest width, "widths": widths with an optimum}``.

    Example:
        >>> transfer({64: -8, 128: -8, 256: -9, 512: -8})
        {'holds': True, 'spread': 1, 'shift': 0, 'widths': 4}
        >>> transfer({64: -6, 128: -7, 256: -8, 512: -9})["holds"]
        False
    """
    found = {w: k for w, k in sorted(optima.items()) if k is not None}
    if not found:
        return {"holds": False, "spread": None, "shift": None, "widths": 0}
    values = list(found.values())
    spread = max(values) - min(values)
    return {
        "holds": len(found) >= min_widths and spread <= 1,
        "spread": spread,
        "shift": values[-1] - values[0],
        "widths": len(found),
    }


@dataclasses.dataclass
class LRSweep:
    """The grid's runs and what they say.

    Attributes:
        task: the task's name.
        model: the family's spec template.
        widths: the widths, ascending.
        log2_lrs: the grid's exponents of 2.
        seeds: the seeds.
        steps: updates per run.
        cells: every run.
        notes: ``{parametrisation: [what it could not do, ...]}``.
        seconds: wall time of the runs made (not of those resumed).

    Example:
        >>> cells = [Cell(p, w, k, 0, (k + 7) ** 2 + 1) for p in ("sp", "mup")
        ...          for w in (64, 128) for k in (-8, -7, -6)]
        >>> s = LRSweep("digits", "mlp", [64, 128], [-8, -7, -6], [0], 10, cells)
        >>> s.optima("mup"), s.verdict()["mup"]["spread"]
        ({64: -7, 128: -7}, 0)
    """

    task: str
    model: str
    widths: list[int]
    log2_lrs: list[int]
    seeds: list[int]
    steps: int
    cells: list[Cell]
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def parametrisations(self) -> list[str]:
        """The parametrisations present, in :data:`PARAMETRISATIONS` order."""
        seen = {c.parametrisation for c in self.cells}
        return [p for p in PARAMETRISATIONS if p in seen]

    def losses(self, parametrisation: str) -> dict[int, dict[int, float]]:
        """``{width: {log2_lr: loss averaged over seeds}}`` (NaN if any seed diverged).

        Args:
            parametrisation: ``sp`` or ``mup``.

        Returns:
            The loss curves.

        Example:
            >>> s = LRSweep("t", "m", [8], [-2, -1], [0], 1,
            ...             [Cell("sp", 8, -2, 0, 0.5), Cell("sp", 8, -1, 0, 0.25)])
            >>> s.losses("sp")
            {8: {-2: 0.5, -1: 0.25}}
        """
        acc: dict[int, dict[int, list[float]]] = {}
        for c in self.cells:
            if c.parametrisation == parametrisation:
                acc.setdefault(c.width, {}).setdefault(c.log2_lr, []).append(c.loss)
        return {
            w: {k: sum(v) / len(v) for k, v in sorted(row.items())}
            for w, row in sorted(acc.items())
        }

    def optima(self, parametrisation: str) -> dict[int, int | None]:
        """``{width: optimal log2_lr}`` (:func:`optimal_log2_lr`).

        Args:
            parametrisation: ``sp`` or ``mup``.

        Returns:
            The optima.

        Example:
            >>> s = LRSweep("t", "m", [8], [-2, -1], [0], 1,
            ...             [Cell("sp", 8, -2, 0, 0.5), Cell("sp", 8, -1, 0, 0.25)])
            >>> s.optima("sp")
            {8: -1}
        """
        return {w: optimal_log2_lr(row) for w, row in self.losses(parametrisation).items()}

    def verdict(self) -> dict[str, dict[str, Any]]:
        """``{parametrisation: transfer(optima)}`` plus whether an optimum is at the grid's edge.

        Example:
            >>> s = LRSweep("t", "m", [8], [-2, -1], [0], 1, [Cell("sp", 8, -2, 0, 0.5)])
            >>> s.verdict()["sp"]["at_edge"]
            [8]
        """
        out = {}
        edges = (min(self.log2_lrs), max(self.log2_lrs))
        for p in self.parametrisations:
            optima = self.optima(p)
            out[p] = transfer(optima) | {"at_edge": [w for w, k in optima.items() if k in edges]}
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data: settings, cells, curves, optima, verdict (NaN as None).

        Example:
            >>> s = LRSweep("t", "m", [8], [-2], [0], 1, [Cell("sp", 8, -2, 0, float("nan"))])
            >>> s.to_dict()["losses"]["sp"]
            {'8': {'-2': None}}
        """

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "task": self.task,
            "model": self.model,
            "widths": self.widths,
            "log2_lrs": self.log2_lrs,
            "seeds": self.seeds,
            "steps": self.steps,
            "cells": [dataclasses.asdict(c) | {"loss": num(c.loss)} for c in self.cells],
            "losses": {
                p: {
                    str(w): {str(k): num(v) for k, v in row.items()}
                    for w, row in self.losses(p).items()
                }
                for p in self.parametrisations
            },
            "optima": {
                p: {str(w): k for w, k in self.optima(p).items()} for p in self.parametrisations
            },
            "verdict": self.verdict(),
            "notes": self.notes,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------- training


def _stacked_update(
    params: dict[str, Tensor],
    state: dict[str, list[Tensor]],
    lrs: Tensor,
    mults: dict[str, float],
    step: int,
    optimizer: str,
) -> None:
    """One update of every run with its own learning rate ``lrs[r] * mults[name]``: Adam (the
    equations of ``torch.optim.Adam``, betas 0.9/0.999, eps 1e-8, no weight decay) or plain
    SGD."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    with torch.no_grad():
        for name, p in params.items():
            g = p.grad
            if g is None:
                continue
            lr = (lrs * mults[name]).view(-1, *([1] * (p.dim() - 1)))
            if optimizer == "sgd":
                p.sub_(lr * g)
                continue
            m, v = state.setdefault(name, [torch.zeros_like(p), torch.zeros_like(p)])
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2**step)).add_(eps)
            p.sub_((lr / (1 - b1**step)) * m / denom)


def _scaled(logits: Tensor, net: StackedNet, bias: str | None, mult: float) -> Tensor:
    """The readout's output with its *input* multiplied by ``mult`` (muP's readout multiplier,
    as ``MuReadout``): ``W (mult x) + b = mult (W x + b) + (1 - mult) b``."""
    if mult == 1.0:
        return logits
    out = logits * mult
    if bias is not None:
        out = out + (1.0 - mult) * net.params[bias].unsqueeze(1)
    return out


def _digits_group(
    template: str,
    width: int,
    param: str,
    runs: list[tuple[int, int]],
    base_width: int,
    steps: int,
    batch_size: int,
    optimizer: str,
    notes: dict[str, list[str]],
) -> list[float]:
    """Final training losses of ``runs`` ``(log2_lr, seed)`` at one width, stacked."""
    data = load_dataset("digits")
    shape, classes = data.input_shape, data.num_classes
    base = build_member(template, base_width, shape, classes, meta=True)
    models, mults, readout = [], None, 1.0
    for _, seed in runs:
        model = build_member(template, width, shape, classes, seed=seed)
        prep = prepare(model, param, lr=1.0, optimizer=optimizer, base=base, seed=seed)
        prep.remove()  # the stacked forward applies the readout multiplier itself
        notes[param] = prep.notes
        last = [n for n, m in model.named_modules() if next(m.parameters(False), None) is not None]
        if set(prep.readouts) - {last[-1]}:
            raise WidthError(
                f"{param}: readouts {sorted(prep.readouts)} are not the last layer; the stacked "
                "digits task needs the readout last"
            )
        readout = prep.readouts.get(last[-1], 1.0)
        head_bias = (
            f"{last[-1]}.bias"
            if getattr(model.get_submodule(last[-1]), "bias", None) is not None
            else None
        )
        mults = prep.lr_mults
        models.append(model)
    net = StackedNet(models)
    lrs = torch.tensor([2.0**k for k, _ in runs])
    gens = [torch.Generator().manual_seed(seed) for _, seed in runs]
    n = data.x_train.shape[0]
    state: dict[str, list[Tensor]] = {}
    for step in range(1, steps + 1):
        idx = torch.stack([torch.randint(0, n, (batch_size,), generator=g) for g in gens])
        out = _scaled(net.logits(data.x_train[idx]), net, head_bias, readout)
        losses = F.cross_entropy(out.flatten(0, 1), data.y_train[idx].flatten(), reduction="none")
        loss = losses.view(len(runs), -1).mean(1).sum()
        for p in net.params.values():
            p.grad = None
        loss.backward()
        _stacked_update(net.params, state, lrs, mults or {}, step, optimizer)
    with torch.no_grad():
        out = _scaled(net.logits_shared(data.x_train), net, head_bias, readout)
        final = (
            F.cross_entropy(out.flatten(0, 1), data.y_train.repeat(len(runs)), reduction="none")
            .view(len(runs), -1)
            .mean(1)
        )
    return [float(v) for v in final]


def _text_run(
    template: str,
    width: int,
    param: str,
    log2_lr: int,
    seed: int,
    base_width: int,
    steps: int,
    batch_size: int,
    seq_len: int,
    optimizer: str,
    notes: dict[str, list[str]],
) -> float:
    """Final training loss of one character-level GPT-2 run."""
    text = _text()
    model = build_member(template, width, seed=seed)
    base = build_member(template, base_width, meta=True)
    prep = prepare(model, param, lr=2.0**log2_lr, optimizer=optimizer, base=base, seed=seed)
    notes[param] = prep.notes
    opt = group_optimizer(optimizer, prep.param_groups)
    g = torch.Generator().manual_seed(seed)
    model.train()
    try:
        for _ in range(steps):
            b = text_batch(text.train, batch_size, seq_len, g)
            logits = model(input_ids=b[:, :-1]).logits
            loss = F.cross_entropy(logits.flatten(0, 1), b[:, 1:].flatten())
            if not torch.isfinite(loss):
                return math.nan
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        ge = torch.Generator().manual_seed(12345)  # the same evaluation batches for every run
        with torch.no_grad():
            total = 0.0
            for _ in range(8):
                b = text_batch(text.train, batch_size, seq_len, ge)
                logits = model(input_ids=b[:, :-1]).logits
                total += F.cross_entropy(logits.flatten(0, 1), b[:, 1:].flatten()).item()
        return total / 8
    finally:
        prep.remove()


def lr_sweep(
    task: str = "digits",
    *,
    widths: Sequence[int] | None = None,
    log2_lrs: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    parametrisations: Sequence[str] = PARAMETRISATIONS,
    steps: int | None = None,
    batch_size: int | None = None,
    optimizer: str = "adam",
    done: Iterable[Cell] = (),
    on_cell: Callable[[Cell], None] | None = None,
    threads: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> LRSweep:
    """Train the task's family over widths x learning rates x seeds, under SP and muP.

    Args:
        task: a key of :data:`TASKS`.
        widths: the widths (default the task's); the narrowest is muP's base.
        log2_lrs: the grid, exponents of 2 (default the task's).
        seeds: the seeds (default ``range(task.seeds)``).
        parametrisations: any of ``sp``, ``mup``.
        steps: updates per run (default the task's).
        batch_size: examples or sequences per step (default the task's).
        optimizer: ``adam`` (or ``sgd``, plain, with muP's SGD rule).
        done: cells already measured (a resumed sweep): not run again.
        on_cell: called with every new cell as soon as it is measured.
        threads: torch threads while training (:func:`~initlab.lab.groups.torch_threads`).
        progress: called with one line per group of runs.

    Returns:
        The :class:`LRSweep`.

    Raises:
        WidthError: an unknown task, parametrisation or optimizer, fewer than two widths or
            learning rates.

    Example:
        >>> s = lr_sweep("digits", widths=[8, 16], log2_lrs=[-6, -5], seeds=[0], steps=2,
        ...              parametrisations=["sp"])
        >>> sorted(s.optima("sp"))
        [8, 16]
    """
    if task not in TASKS:
        raise WidthError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    spec = TASKS[task]
    widths = sorted({int(w) for w in (widths or spec.widths)})
    lrs = sorted({int(k) for k in (log2_lrs or range(spec.log2_lrs[0], spec.log2_lrs[1] + 1))})
    seeds = list(range(spec.seeds)) if seeds is None else list(seeds)
    steps = spec.steps if steps is None else int(steps)
    batch_size = batch_size or spec.batch_size
    if len(widths) < 2 or widths[0] < 1:
        raise WidthError(f"give at least two different positive widths, got {widths}")
    if len(lrs) < 2:
        raise WidthError(f"give at least two learning rates, got {lrs}")
    if not seeds or steps < 1:
        raise WidthError("give at least one seed and one step")
    unknown = [p for p in parametrisations if p not in PARAMETRISATIONS]
    if unknown or not parametrisations:
        raise WidthError(f"parametrisations must be among {', '.join(PARAMETRISATIONS)}")
    if optimizer not in ("adam", "sgd"):
        raise WidthError(f"lrsweep optimizer must be adam or sgd, got {optimizer!r}")
    known = {c.key: c for c in done}
    cells: list[Cell] = []
    notes: dict[str, list[str]] = {}
    start = time.perf_counter()

    def record(cell: Cell) -> None:
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)

    with torch_threads(threads):
        for param in parametrisations:
            for width in widths:
                todo = []
                for k in lrs:
                    for seed in seeds:
                        if (param, width, k, seed) in known:
                            cells.append(known[(param, width, k, seed)])
                        else:
                            todo.append((k, seed))
                if not todo:
                    continue
                t0 = time.perf_counter()
                if task == "digits":
                    n_params = sum(
                        p.numel() for p in build_member(spec.model, width, meta=True).parameters()
                    )
                    size = max(1, _GROUP_FLOATS // max(1, n_params))
                    for i in range(0, len(todo), size):
                        group = todo[i : i + size]
                        losses = _digits_group(
                            spec.model,
                            width,
                            param,
                            group,
                            widths[0],
                            steps,
                            batch_size,
                            optimizer,
                            notes,
                        )
                        for (k, seed), loss in zip(group, losses, strict=True):
                            record(
                                Cell(
                                    param, width, k, seed, loss if math.isfinite(loss) else math.nan
                                )
                            )
                else:
                    for k, seed in todo:
                        loss = _text_run(
                            spec.model,
                            width,
                            param,
                            k,
                            seed,
                            widths[0],
                            steps,
                            batch_size,
                            spec.seq_len,
                            optimizer,
                            notes,
                        )
                        record(
                            Cell(param, width, k, seed, loss if math.isfinite(loss) else math.nan)
                        )
                if progress is not None:
                    progress(
                        f"lrsweep {task}: {param} width {width}: {len(todo)} runs in "
                        f"{time.perf_counter() - t0:.0f}s"
                    )
    return LRSweep(
        task, spec.model, widths, lrs, seeds, steps, cells, notes, time.perf_counter() - start
    )
