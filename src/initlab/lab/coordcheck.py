"""The coordinate check: does any layer's activation size grow or shrink with width?

As microsoft/mup's ``coord_check`` (Yang et al. 2022, "Tensor Programs V", Appendix D.1,
https://arxiv.org/abs/2203.03466): build a model family at several widths, train each a few
steps on the same batches, and record every layer's *coordinate size*, the mean absolute value
of its output, ``mean |x|``, at each step. Step 0 is at init; step t is the forward pass after
t optimizer updates. Under a parametrisation that is stable in width every curve of coordinate
size against width is flat; under the standard parametrisation trained with Adam the readout's
output grows about linearly with width.

Flatness is measured: for each layer and step, the least-squares slope of
``log(mean |x|)`` against ``log(width)`` (:func:`fit_slope`; 1 means proportional to width,
0 flat). A layer is *flagged* when its slope's magnitude at the last step exceeds the threshold.
With several seeds, the coordinate size at each width is the mean over seeds.

The models are trained with the parametrisations of :mod:`initlab.lab.width`: ``sp`` and
``mup`` (base: the narrowest width). Classification models (the zoo's ``mlp``...) train on a
lab data set with cross-entropy; Hugging Face language models on the standard library's text
(:mod:`initlab.lab.data.text`) with next-token cross-entropy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..diagnostics.hooks import first_tensor
from .data import load_dataset
from .data.text import load_stdlib_text, text_batch
from .groups import torch_threads
from .width import (
    PARAMETRISATIONS,
    WidthError,
    build_member,
    group_optimizer,
    is_language_model,
    prepare,
)

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_THRESHOLD",
    "CoordCheck",
    "CoordRecorder",
    "coord_check",
    "fit_slope",
]

# read once per process: every run of a sweep trains on the same text
_text = functools.lru_cache(maxsize=4)(load_stdlib_text)

#: the default learning rate per optimizer
DEFAULT_LR = {"adam": 1e-2, "adamw": 1e-2, "sgd": 0.1}
#: |slope| above which a layer is flagged as growing or shrinking with width
DEFAULT_THRESHOLD = 0.25

ProgressFn = Callable[[str], None]


def fit_slope(widths: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of ``log(value)`` against ``log(width)``.

    A coordinate size proportional to ``width ** a`` has slope ``a``.

    Args:
        widths: the widths (positive).
        values: the coordinate sizes, one per width.

    Returns:
        The slope; NaN when a value is not positive and finite or fewer than two widths.

    Example:
        >>> round(fit_slope([64, 128, 256], [1.0, 2.0, 4.0]), 6)
        1.0
        >>> round(fit_slope([64, 128, 256], [3.0, 3.0, 3.0]), 6)
        0.0
    """
    if len(widths) != len(values):
        raise ValueError(f"{len(widths)} widths but {len(values)} values")
    if len(widths) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        return math.nan
    xs = [math.log2(w) for w in widths]
    ys = [math.log2(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


class CoordRecorder:
    """Forward hooks recording ``mean |output|`` of every module with parameters of its own.

    A module called several times in one forward pass records the mean over its calls.
    :meth:`take` returns the values since the last call and starts afresh.

    Args:
        model: the model.
        names: the modules to record (default: those with parameters of their own).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> rec = CoordRecorder(net)
        >>> _ = net(torch.ones(4, 2))
        >>> sorted(rec.take())
        ['0', '2']
        >>> rec.remove()
    """

    def __init__(self, model: nn.Module, names: Sequence[str] | None = None) -> None:
        modules = dict(model.named_modules())
        if names is None:
            names = [
                n
                for n, m in modules.items()
                if n and next(m.parameters(recurse=False), None) is not None
            ]
        self.names = list(names)
        self._sums: dict[str, list[float]] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            t = first_tensor(output)
            if t is not None and t.is_floating_point():
                self._sums.setdefault(name, []).append(t.detach().abs().mean().item())

        return hook

    def take(self) -> dict[str, float]:
        """``{module name: mean |output|}`` recorded since the last take."""
        out = {n: sum(v) / len(v) for n, v in self._sums.items()}
        self._sums = {}
        return out

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclasses.dataclass
class CoordCheck:
    """Coordinate sizes per parametrisation, layer, width and step, and their slopes.

    Attributes:
        model: the family's spec template (``{width}`` in it).
        widths: the widths, ascending.
        steps: optimizer updates (records at steps ``0 .. steps``).
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr: the global learning rate.
        seeds: the seeds averaged.
        threshold: ``|slope|`` above which a layer is flagged.
        coords: ``{parametrisation: {layer: [[size at step t for t] for width]}}``, means over
            seeds.
        notes: ``{parametrisation: [what the parametrisation could not do, ...]}``.
        seconds: wall time of the run.

    Example:
        >>> cc = CoordCheck("m", [64, 128], 1, "adam", 0.01, [0], 0.25,
        ...                 {"sp": {"fc": [[1.0, 1.0], [1.0, 1.0]]}})
        >>> cc.slopes("sp"), cc.flagged("sp")
        ({'fc': [0.0, 0.0]}, {})
    """

    model: str
    widths: list[int]
    steps: int
    optimizer: str
    lr: float
    seeds: list[int]
    threshold: float
    coords: dict[str, dict[str, list[list[float]]]]
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def slopes(self, parametrisation: str) -> dict[str, list[float]]:
        """``{layer: [slope at step t for t in 0..steps]}``.

        Args:
            parametrisation: ``sp`` or ``mup``.

        Returns:
            The slopes.

        Example:
            >>> cc = CoordCheck("m", [64, 128], 1, "adam", 0.01, [0], 0.25,
            ...                 {"sp": {"head": [[1.0, 1.0], [1.0, 2.0]]}})
            >>> cc.slopes("sp")
            {'head': [0.0, 1.0]}
        """
        table = self.coords[parametrisation]
        return {
            layer: [
                fit_slope(self.widths, [per_width[t] for per_width in rows])
                for t in range(self.steps + 1)
            ]
            for layer, rows in table.items()
        }

    def flagged(self, parametrisation: str) -> dict[str, float]:
        """``{layer: its slope at the last step}`` for the layers whose ``|slope|`` there
        exceeds the threshold (a NaN slope, from a diverged or all-zero output, is flagged too).

        The last step is where the updates dominate: at step 0 muP's readout output shrinks
        with width by design (its init variance is ``1/fan_in**2``), which is no instability.

        Args:
            parametrisation: ``sp`` or ``mup``.

        Returns:
            The flagged layers.

        Example:
            >>> cc = CoordCheck("m", [64, 128], 1, "adam", 0.01, [0], 0.25,
            ...                 {"sp": {"head": [[1.0, 1.0], [1.0, 2.0]]}})
            >>> cc.flagged("sp")
            {'head': 1.0}
        """
        out = {}
        for layer, slopes in self.slopes(parametrisation).items():
            last = slopes[-1]
            if math.isnan(last) or abs(last) > self.threshold:
                out[layer] = last
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the settings, coordinate sizes, slopes and flags (NaN as None).

        Example:
            >>> cc = CoordCheck("m", [64, 128], 1, "adam", 0.01, [0], 0.25,
            ...                 {"sp": {"head": [[1.0, 1.0], [1.0, 2.0]]}})
            >>> cc.to_dict()["slopes"]["sp"]["head"]
            [0.0, 1.0]
        """

        def clean(x: Any) -> Any:
            if isinstance(x, float):
                return None if not math.isfinite(x) else x
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return clean(
            {
                "model": self.model,
                "widths": self.widths,
                "steps": self.steps,
                "optimizer": self.optimizer,
                "lr": self.lr,
                "seeds": self.seeds,
                "threshold": self.threshold,
                "coords": self.coords,
                "slopes": {p: self.slopes(p) for p in self.coords},
                "flagged": {p: self.flagged(p) for p in self.coords},
                "notes": self.notes,
                "seconds": self.seconds,
            }
        )


def _batches(
    model: nn.Module, data: str, steps: int, batch_size: int, seq_len: int, seed: int
) -> tuple[list[tuple[Tensor, Tensor]], tuple[int, ...] | None, int | None]:
    """``steps + 1`` fixed (input, target) batches for this seed, and the zoo's shapes."""
    g = torch.Generator().manual_seed(seed)
    if is_language_model(model):
        text = _text(200_000)
        out = []
        for _ in range(steps + 1):
            b = text_batch(text.train, batch_size, seq_len, g)
            out.append((b[:, :-1], b[:, 1:]))
        return out, None, None
    dataset = load_dataset(data, seed=seed)
    n = dataset.x_train.shape[0]
    out = []
    for _ in range(steps + 1):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        out.append((dataset.x_train[idx], dataset.y_train[idx]))
    return out, dataset.input_shape, dataset.num_classes


def _loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    if is_language_model(model):
        logits = getattr(model(input_ids=x), "logits", None)
        if logits is None or logits.shape[-1] != model.config.vocab_size:
            raise WidthError(
                f"{type(model).__name__} gives no next-token logits; build the family with a "
                "language-model head (e.g. 'hf:gpt2?head=causal_lm&...')"
            )
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())
    return F.cross_entropy(model(x), y)


def coord_check(
    template: str,
    widths: Sequence[int],
    *,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float | None = None,
    seeds: Sequence[int] | None = None,
    parametrisations: Sequence[str] = PARAMETRISATIONS,
    data: str = "digits",
    batch_size: int | None = None,
    seq_len: int = 64,
    threshold: float = DEFAULT_THRESHOLD,
    threads: int | None = 1,
    progress: ProgressFn | None = None,
) -> CoordCheck:
    """Train the family at each width for ``steps`` updates and record its coordinate sizes.

    Every width of one seed sees the same batches. The muP base is the narrowest width.

    Args:
        template: a model family (:func:`initlab.lab.width.family_template`).
        widths: two or more widths.
        steps: optimizer updates (records at steps 0 .. steps).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (no momentum).
        lr: the global learning rate (default :data:`DEFAULT_LR`).
        seeds: seeds (init and batches) averaged (default 0, 1, 2; only 0 for a language
            model, whose widest members cost the most).
        parametrisations: any of ``sp``, ``mup``.
        data: the lab data set for classification models (language models read stdlib text).
        batch_size: examples per step (default 64; 8 sequences for a language model).
        seq_len: tokens per sequence for a language model.
        threshold: ``|slope|`` above which a layer is flagged.
        threads: torch threads while training (:func:`~initlab.lab.groups.torch_threads`).
        progress: called with one line per (parametrisation, width).

    Returns:
        The :class:`CoordCheck`.

    Raises:
        WidthError: bad widths, steps, parametrisations, or a spec the family cannot build.

    Example:
        >>> cc = coord_check("mlp:widths={width}-{width}", [16, 32], steps=1, seeds=[0],
        ...                  parametrisations=["sp"], batch_size=8)
        >>> sorted(cc.coords["sp"]), len(cc.coords["sp"]["head"])
        (['fc1', 'fc2', 'head'], 2)
    """
    widths = sorted(int(w) for w in widths)
    if len(set(widths)) < 2 or widths[0] < 1:
        raise WidthError(f"give at least two different positive widths, got {widths}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise WidthError(f"steps must be a positive integer, got {steps!r}")
    unknown = [p for p in parametrisations if p not in PARAMETRISATIONS]
    if unknown or not parametrisations:
        raise WidthError(
            f"parametrisations must be among {', '.join(PARAMETRISATIONS)}, got {unknown}"
        )
    if optimizer not in DEFAULT_LR:
        raise WidthError(f"optimizer must be one of {', '.join(DEFAULT_LR)}, got {optimizer!r}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    probe = build_member(template, widths[0], meta=True)
    lm = is_language_model(probe)
    seeds = ([0] if lm else [0, 1, 2]) if seeds is None else list(seeds) or [0]
    batch_size = batch_size or (8 if lm else 64)
    start = time.perf_counter()
    coords: dict[str, dict[str, list[list[float]]]] = {}
    notes: dict[str, list[str]] = {}
    with torch_threads(threads):
        for param in parametrisations:
            sums: dict[str, list[list[float]]] = {}
            for wi, width in enumerate(widths):
                for seed in seeds:
                    batches, shape, classes = _batches(
                        probe, data, steps, batch_size, seq_len, seed
                    )
                    model = build_member(template, width, shape, classes, seed=seed)
                    base = build_member(template, widths[0], shape, classes, meta=True)
                    prep = prepare(model, param, lr=lr, optimizer=optimizer, base=base, seed=seed)
                    notes[param] = prep.notes
                    opt = group_optimizer(optimizer, prep.param_groups)
                    rec = CoordRecorder(model)  # after the readout hooks: sees their output
                    model.train()
                    try:
                        for t, (x, y) in enumerate(batches):
                            loss = _loss(model, x, y)
                            for layer, v in rec.take().items():
                                rows = sums.setdefault(layer, [[0.0] * (steps + 1) for _ in widths])
                                rows[wi][t] += v / len(seeds)
                            if t == steps:
                                break
                            opt.zero_grad(set_to_none=True)
                            loss.backward()
                            opt.step()
                    finally:
                        rec.remove()
                        prep.remove()
                if progress is not None:
                    progress(
                        f"coordcheck: {param} width {width} done "
                        f"({time.perf_counter() - start:.0f}s)"
                    )
            coords[param] = sums
    return CoordCheck(
        template,
        widths,
        steps,
        optimizer,
        lr,
        seeds,
        float(threshold),
        coords,
        notes,
        time.perf_counter() - start,
    )
