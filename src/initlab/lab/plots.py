"""Curves per entry across seeds: a mean line and a min-max band, one PNG per metric.

* ``curves_loss.png``: training loss (left) and validation loss (right) against the epoch,
  log scale (bad inits reach losses far above the good ones);
* ``curves_accuracy.png``: validation accuracy against the epoch.

Epoch 0 is at init. Bands span the minimum to the maximum over seeds (with three seeds a
standard-deviation band says little). Non-finite values are left out of the mean and band.
Drawn with matplotlib's Agg backend (no display needed), entries in ranking order.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .results import RunResult

__all__ = ["PLOT_FILES", "plot_curves"]

PLOT_FILES = {"loss": "curves_loss.png", "accuracy": "curves_accuracy.png"}

_TITLES = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "val_acc": "validation accuracy",
}


def _curves(runs: Sequence[RunResult], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs [E+1] and values [seeds, E+1] (NaN where non-finite), cut to the shortest run."""
    length = min(len(r.metrics[metric]) for r in runs)
    values = np.array([r.metrics[metric][:length] for r in runs], dtype=float)
    values[~np.isfinite(values)] = np.nan
    return np.arange(length), values


def _draw(ax, groups: dict[str, list[RunResult]], metric: str, log: bool) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")  # distinct colours; past ten, dashed lines
    for i, (label, runs) in enumerate(groups.items()):
        x, v = _curves(runs, metric)
        color, style = cmap(i % 10), ("-", "--", ":")[(i // 10) % 3]
        if not np.isfinite(v).any():
            continue
        with warnings.catch_warnings():  # all-NaN epochs give NaN, which is not drawn
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, lo, hi = np.nanmean(v, 0), np.nanmin(v, 0), np.nanmax(v, 0)
        ax.plot(x, mean, color=color, ls=style, lw=1.6, label=label)
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    ax.set_title(_TITLES.get(metric, metric))
    ax.set_xlabel("epoch")
    if log:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)


def plot_curves(
    results: Sequence[RunResult],
    folder: str | os.PathLike[str],
    order: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the curve PNGs for ``results`` into ``folder``; returns ``{kind: path}``.

    Args:
        results: the runs (any number of seeds per entry).
        folder: where to write (created if needed).
        order: entry labels in legend order (default: first seen).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.entry, []).append(r)
    if order is not None:
        groups = {k: groups[k] for k in order if k in groups}
    n_seeds = max((len(v) for v in groups.values()), default=0)
    note = f"mean over seeds (up to {n_seeds}), band: min–max"
    paths: dict[str, Path] = {}

    def _positive(metric: str) -> bool:
        vals = [v for rs in groups.values() for r in rs for v in r.metrics.get(metric, [])]
        finite = [v for v in vals if math.isfinite(v)]
        return bool(finite) and min(finite) > 0

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, metric in zip(axes, ("train_loss", "val_loss"), strict=True):
        _draw(ax, groups, metric, log=_positive("train_loss") and _positive("val_loss"))
    axes[0].set_ylabel("cross-entropy")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"Loss per init scheme — {note}", fontsize=11)
    fig.tight_layout()
    paths["loss"] = folder / PLOT_FILES["loss"]
    fig.savefig(paths["loss"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 5))
    _draw(ax, groups, "val_acc", log=False)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"Validation accuracy per init scheme — {note}", fontsize=11)
    fig.tight_layout()
    paths["accuracy"] = folder / PLOT_FILES["accuracy"]
    fig.savefig(paths["accuracy"], dpi=110)
    plt.close(fig)
    return paths
