"""Static figures of a comparison (matplotlib PNGs, for papers), one colour per entry throughout.

* ``final.png``: a sorted dot plot of each entry's final validation accuracy (%) with its 95%
  interval (:mod:`initlab.lab.stats`), best at the top, and a dashed line at chance;
* ``curves_accuracy.png``: validation accuracy (%) against the epoch, one small panel per
  entry (in ranking order): the entry's mean over seeds in its colour with a min-max band, the
  other entries' means in grey behind it, chance dashed;
* ``curves_loss.png``: the same panels for the training loss (solid) and validation loss
  (dashed), log scale when every value is positive, the axis fitted to the runs that did not
  diverge (:func:`loss_limits`).

Epoch 0 is at init. Bands span the minimum to the maximum over seeds (with three seeds a
standard-deviation band says little). Non-finite values are left out of the mean and band.
Colours come from :func:`initlab.lab.palette.entry_colors`, so an entry has the same colour here,
in the propagation plot and in the HTML report. Drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .palette import GREY, entry_colors
from .results import RunResult
from .stats import EntryStats

__all__ = ["PLOT_FILES", "curves", "group_runs", "loss_limits", "plot_curves", "plot_final"]

PLOT_FILES = {
    "final": "final.png",
    "accuracy": "curves_accuracy.png",
    "loss": "curves_loss.png",
}


def group_runs(
    results: Sequence[RunResult], order: Sequence[str] | None = None
) -> dict[str, list[RunResult]]:
    """``{entry: runs}`` in ``order`` (default: first seen).

    Args:
        results: the runs.
        order: entry labels in the order wanted; entries not in it are left out.

    Returns:
        The runs grouped by entry.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> {k: len(v) for k, v in group_runs(runs).items()}
        {'kaiming': 3}
    """
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.entry, []).append(r)
    if order is not None:
        groups = {k: groups[k] for k in order if k in groups}
    return groups


def curves(runs: Sequence[RunResult], metric: str) -> tuple[np.ndarray, np.ndarray, ...]:
    """Epochs, and the mean, min and max over seeds per epoch (NaN where no seed is finite),
    cut to the shortest run.

    Args:
        runs: one entry's runs.
        metric: one of :data:`~initlab.lab.results.METRICS`.

    Returns:
        Four arrays: epochs, mean, min, max.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> x, mean, lo, hi = curves(runs, "val_acc")
        >>> x.tolist(), [round(v, 6) for v in mean.tolist()]
        ([0, 1, 2], [0.1, 0.8, 0.9])
    """
    length = min(len(r.metrics[metric]) for r in runs)
    values = np.array([r.metrics[metric][:length] for r in runs], dtype=float)
    values[~np.isfinite(values)] = np.nan
    with warnings.catch_warnings():  # all-NaN epochs give NaN, which is not drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.arange(length), np.nanmean(values, 0), np.nanmin(values, 0),
                np.nanmax(values, 0))  # fmt: skip


def loss_limits(results: Sequence[RunResult]) -> tuple[float, float] | None:
    """The loss axis' range: the finite losses of the runs that did not diverge, so that a
    diverged run's huge values leave the others readable (None when every run diverged).

    Args:
        results: the runs.

    Returns:
        ``(lowest, highest)`` training or validation loss, or None.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> loss_limits(runs)
        (0.2, 2.3)
    """
    ok = [r.metrics[m] for r in results if r.status == "ok" for m in ("train_loss", "val_loss")]
    vals = [v for series in ok for v in series if math.isfinite(v)]
    return (min(vals), max(vals)) if vals else None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _chance(results: Sequence[RunResult]) -> float | None:
    chance = results[0].config.get("data", {}).get("chance") if results else None
    return float(chance) if isinstance(chance, (int, float)) else None


def plot_final(
    stats: Sequence[EntryStats],
    path: str | os.PathLike[str],
    colors: Mapping[str, str] | None = None,
    chance: float | None = None,
) -> Path:
    """The sorted dot plot of final validation accuracy (%) with 95% intervals; returns ``path``.

    Args:
        stats: ranked entry statistics (:func:`initlab.lab.stats.summarise`).
        path: the PNG to write.
        colors: ``{entry: colour}`` (default :func:`initlab.lab.palette.entry_colors`).
        chance: the chance accuracy as a fraction (a dashed line), or None.

    Returns:
        ``path``, as a Path.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> import tempfile
        >>> from pathlib import Path
        >>> from initlab.lab.stats import summarise
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     plot_final(summarise(runs), Path(tmp) / "final.png", chance=0.1).name
        'final.png'
    """
    plt = _pyplot()
    colors = colors or entry_colors(s.entry for s in stats)
    rows = [s for s in stats if s.metrics["final"].get("val_acc") is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.36 * max(len(rows), 1)))
    for y, s in enumerate(reversed(rows)):
        acc = s.metrics["final"]["val_acc"]
        if acc.n == 0:
            ax.annotate(f"{s.entry}: no finite value", (1, y), fontsize=8, color="0.4")
            continue
        err = None
        if acc.ci is not None:
            err = [[100 * (acc.mean - acc.ci[0])], [100 * (acc.ci[1] - acc.mean)]]
        ax.errorbar(100 * acc.mean, y, xerr=err, fmt="o", color=colors[s.entry], capsize=3,
                    ms=6, lw=1.5)  # fmt: skip
    ax.set_yticks(range(len(rows)), [s.entry for s in reversed(rows)])
    if chance is not None:
        ax.axvline(100 * chance, color="0.3", ls="--", lw=1, label=f"chance {100 * chance:.1f}%")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xlim(0, 100)
    ax.set_xlabel("final validation accuracy (%), mean and 95% interval over seeds")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Final validation accuracy per entry (best at the top)", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panels(n: int) -> tuple[Any, Any, np.ndarray]:
    plt = _pyplot()
    cols = min(4, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    width, height = 3.1 * cols, 2.3 * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), sharex=True, sharey=True,
                             squeeze=False)  # fmt: skip
    # fixed margins in inches (y label and ticks, x label, suptitle; panel titles between rows)
    # instead of tight_layout, which draws every tick label to measure it (~1 s a figure)
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, bottom=0.55 / height,
                        top=1 - 0.65 / height, wspace=0.08, hspace=0.3)  # fmt: skip
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return plt, fig, axes


def _positive(groups: Mapping[str, list[RunResult]], metrics: Sequence[str]) -> bool:
    vals = [v for rs in groups.values() for r in rs for m in metrics for v in r.metrics[m]]
    finite = [v for v in vals if math.isfinite(v)]
    return bool(finite) and min(finite) > 0


def _small_multiples(
    groups: Mapping[str, list[RunResult]],
    colors: Mapping[str, str],
    metrics: Sequence[tuple[str, str]],
    scale: float,
    ylabel: str,
    title: str,
    chance: float | None,
    log: bool,
    path: Path,
    limits: tuple[float, float] | None = None,
) -> Path:
    plt, fig, axes = _panels(len(groups))
    means = {(label, m): curves(runs, m) for label, runs in groups.items() for m, _ in metrics}
    for ax, label in zip(axes.flat, groups, strict=False):
        for (other, m), (x, mean, _, _) in means.items():
            if other != label and m == metrics[-1][0]:
                ax.plot(x, scale * mean, color=GREY, lw=0.8, zorder=1)
        for m, style in metrics:
            x, mean, lo, hi = means[(label, m)]
            ax.plot(x, scale * mean, color=colors[label], ls=style, lw=1.8, zorder=3)
            ax.fill_between(x, scale * lo, scale * hi, color=colors[label], alpha=0.2, lw=0,
                            zorder=2)  # fmt: skip
        if chance is not None:
            ax.axhline(scale * chance, color="0.3", ls="--", lw=0.8, zorder=1)
        if bad := sum(r.status != "ok" for r in groups[label]):
            ax.text(0.97, 0.9, f"diverged in {bad}/{len(groups[label])} seeds", ha="right",
                    va="top", transform=ax.transAxes, fontsize=8, color="0.3")  # fmt: skip
        ax.set_title(label, fontsize=9, color=colors[label], loc="left")
        ax.grid(True, alpha=0.3)
        if log:
            ax.set_yscale("log")
    if limits is not None and limits[1] > limits[0]:
        lo, hi = limits
        if log and lo > 0:
            pad = (hi / lo) ** 0.05
            axes.flat[0].set_ylim(lo / pad, hi * pad)
        else:
            axes.flat[0].set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(
    results: Sequence[RunResult],
    folder: str | os.PathLike[str],
    order: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``curves_accuracy.png`` and ``curves_loss.png``; returns ``{kind: path}``.

    Args:
        results: the runs (any number of seeds per entry).
        folder: where to write (created if needed).
        order: entry labels in panel order (default: first seen).
        colors: ``{entry: colour}`` (default :func:`initlab.lab.palette.entry_colors`).

    Returns:
        ``{"accuracy": path, "loss": path}``.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(plot_curves(runs, tmp))
        ['accuracy', 'loss']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups = group_runs(results, order)
    colors = colors or entry_colors(groups)
    n_seeds = max((len(v) for v in groups.values()), default=0)
    note = f"mean over {n_seeds} seeds, band min–max; grey: the other entries"
    chance = _chance(results)
    paths = {
        "accuracy": _small_multiples(
            groups, colors, [("val_acc", "-")], 100.0, "val. accuracy (%)",
            f"Validation accuracy per entry ({note}; dashed: chance)", chance, False,
            folder / PLOT_FILES["accuracy"],
        ),
        "loss": _small_multiples(
            groups, colors, [("train_loss", "-"), ("val_loss", "--")], 1.0, "cross-entropy",
            f"Training loss (solid) and validation loss (dashed) per entry ({note})", None,
            _positive(groups, ("train_loss", "val_loss")), folder / PLOT_FILES["loss"],
            loss_limits(results),
        ),
    }  # fmt: skip
    return paths
