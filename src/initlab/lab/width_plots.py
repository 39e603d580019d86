"""Figures of the width experiments (matplotlib PNGs, Agg backend).

* :func:`plot_coordcheck`: as microsoft/mup's coordinate check, one panel per step (columns) and
  per parametrisation (rows, SP above muP): each layer's coordinate size ``mean |x|`` against
  width, log-log, with its fitted slope at the last step in the legend;
* :func:`plot_lrsweep`: as Tensor Programs V's Figure 1, one panel per parametrisation: the
  final training loss against ``log2`` of the learning rate, one curve per width (dark: narrow,
  light: wide), each width's optimum marked.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .coordcheck import CoordCheck
from .lrsweep import LRSweep

__all__ = ["LABELS", "plot_coordcheck", "plot_lrsweep"]

#: how a parametrisation is named in figures
LABELS = {"sp": "SP", "mup": "muP"}


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_coordcheck(cc: CoordCheck, path: str | os.PathLike[str]) -> Path:
    """Coordinate size against width, one panel per (parametrisation, step).

    Args:
        cc: a coordinate check.
        path: the PNG to write.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> cc = CoordCheck("m", [64, 128], 1, "adam", 0.01, [0], 0.25,
        ...                 {"sp": {"head": [[1.0, 1.0], [1.0, 2.0]]}})
        >>> plot_coordcheck(cc, tempfile.mkdtemp() + "/cc.png").stat().st_size > 0
        True
    """
    plt = _pyplot()
    params = list(cc.coords)
    layers = list(dict.fromkeys(layer for p in params for layer in cc.coords[p]))
    cmap = plt.get_cmap("tab20" if len(layers) > 10 else "tab10")
    colors = {layer: cmap(i % cmap.N) for i, layer in enumerate(layers)}
    parts = [layer.split(".") for layer in layers]
    common = 0
    while len(layers) > 1 and all(
        len(q) > common + 1 and q[common] == parts[0][common] for q in parts
    ):
        common += 1
    prefix = ".".join(parts[0][:common])
    short = {layer: layer[len(prefix) + 1 :] if prefix else layer for layer in layers}
    cols = cc.steps + 1
    fig, axes = plt.subplots(
        len(params),
        cols,
        figsize=(2.6 * cols + 3.2, max(2.5, 0.14 * len(layers) + 0.6) * len(params)),
        squeeze=False,
        sharex=True,
    )
    for r, p in enumerate(params):
        slopes = cc.slopes(p)
        for t in range(cols):
            ax = axes[r][t]
            for layer, rows in cc.coords[p].items():
                ys = [row[t] for row in rows]
                ok = [
                    (w, y) for w, y in zip(cc.widths, ys, strict=True) if math.isfinite(y) and y > 0
                ]
                if ok:
                    ax.plot(*zip(*ok, strict=True), marker=".", color=colors[layer], lw=1.2)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(
                f"{LABELS.get(p, p)}, step {t}" + (" (init)" if t == 0 else ""), fontsize=9
            )
            ax.tick_params(labelsize=7)
            if r == len(params) - 1:
                ax.set_xlabel("width", fontsize=8)
            if t == 0:
                ax.set_ylabel("mean |x|", fontsize=8)
        handles = [
            plt.Line2D(
                [],
                [],
                color=colors[layer],
                marker=".",
                label=f"{short[layer]}: {slopes[layer][-1]:+.2f}",
            )
            for layer in cc.coords[p]
        ]
        axes[r][-1].legend(
            handles=handles,
            title=f"{LABELS.get(p, p)} slope, last step" + (f"\n({prefix}.*)" if prefix else ""),
            fontsize=6,
            title_fontsize=7,
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            frameon=False,
        )
    fig.suptitle(
        f"coordinate check: {cc.optimizer} lr {cc.lr:g}, {len(cc.seeds)} seed(s); "
        f"flagged when |slope| > {cc.threshold:g}",
        fontsize=10,
    )
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write (creating the folder) and close ``fig``; the PNG's path."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_lrsweep(sweep: LRSweep, path: str | os.PathLike[str]) -> Path:
    """Final training loss against the learning rate, one curve per width, one panel per
    parametrisation.

    Args:
        sweep: a learning-rate sweep.
        path: the PNG to write.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> from initlab.lab.lrsweep import Cell
        >>> s = LRSweep("t", "m", [8, 16], [-2, -1], [0], 1,
        ...             [Cell("sp", w, k, 0, 1.0 + k * k / w) for w in (8, 16) for k in (-2, -1)])
        >>> plot_lrsweep(s, tempfile.mkdtemp() + "/lr.png").stat().st_size > 0
        True
    """
    plt = _pyplot()
    params = sweep.parametrisations
    fig, axes = plt.subplots(
        1, len(params), figsize=(5.0 * len(params), 3.8), squeeze=False, sharey=True
    )
    cmap = plt.get_cmap("viridis")
    n = len(sweep.widths)
    finite = [
        v
        for p in params
        for row in sweep.losses(p).values()
        for v in row.values()
        if math.isfinite(v)
    ]
    lowest = [
        row[min(row)]
        for p in params
        for row in sweep.losses(p).values()
        if row and math.isfinite(row[min(row)])
    ]
    for ax, p in zip(axes[0], params, strict=True):
        optima = sweep.optima(p)
        for i, (w, row) in enumerate(sweep.losses(p).items()):
            color = cmap(0.9 * i / max(1, n - 1))
            pts = [(k, v) for k, v in row.items() if math.isfinite(v)]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), marker=".", color=color, lw=1.4, label=f"width {w}"
                )
            k = optima.get(w)
            if k is not None:
                ax.plot([k], [row[k]], marker="o", ms=8, mfc="none", color=color)
        verdict = sweep.verdict()[p]
        what = "stays" if verdict["holds"] else "moves"
        ax.set_title(
            f"{LABELS.get(p, p)}: the optimum {what} (spread {verdict['spread']})", fontsize=10
        )
        ax.set_xlabel("log2 learning rate", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("training loss after the last step (log)", fontsize=9)
    if finite:
        top = max(lowest) * 1.1 if lowest else max(finite)
        axes[0][0].set_yscale("log")
        axes[0][0].set_ylim(min(finite) * 0.8, top)
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"learning-rate sweep, task {sweep.task}: {sweep.steps} steps, "
        f"{len(sweep.seeds)} seed(s)\ncircles: each width's optimum",
        fontsize=10,
    )
    return _save(plt, fig, path)
