"""Interactive figures for the HTML report (plotly), self-contained and offline.

Three figures, in the entries' fixed colours (:mod:`initlab.lab.palette`): the sorted dot plot of
final validation accuracy with 95% intervals and a chance line, the validation-accuracy curves,
and the training / validation loss curves (log scale). Hovering shows the values; clicking an
entry in the legend hides or shows it (double-click isolates it). plotly.js is inlined once, in
the first figure, so the report opens without a network. plotly is imported here only, when a
report is written (the ``lab`` extra); without it the report keeps its PNGs.

See :func:`figure_divs` for an example.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .palette import entry_colors
from .plots import curves, group_runs, loss_limits
from .results import RunResult
from .stats import EntryStats

__all__ = ["available", "figure_divs", "figures"]

_CONFIG = {"displaylogo": False, "responsive": True}


def available() -> bool:
    """Whether plotly can be imported.

    Example:
        >>> isinstance(available(), bool)
        True
    """
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _final_figure(stats: Sequence[EntryStats], colors: Mapping[str, str],
                  chance: float | None) -> Any:  # fmt: skip
    import plotly.graph_objects as go

    fig = go.Figure()
    rows = [s for s in stats if s.metrics["final"].get("val_acc") is not None]
    for s in reversed(rows):
        acc = s.metrics["final"]["val_acc"]
        if acc.n == 0:
            continue
        lo, hi = acc.ci if acc.ci is not None else (acc.mean, acc.mean)
        ci = "n/a (1 seed)" if acc.ci is None else f"[{100 * lo:.1f}, {100 * hi:.1f}]"
        fig.add_trace(go.Scatter(
            x=[100 * acc.mean], y=[s.entry], mode="markers", name=s.entry,
            marker={"color": colors[s.entry], "size": 10},
            error_x={"type": "data", "symmetric": False, "array": [100 * (hi - acc.mean)],
                     "arrayminus": [100 * (acc.mean - lo)], "color": colors[s.entry]},
            hovertemplate=(f"<b>{s.entry}</b> (#{s.rank})<br>mean %{{x:.1f}}%<br>95% interval "
                           f"{ci}<br>{acc.n} seeds<extra></extra>"),
        ))  # fmt: skip
    if chance is not None:
        fig.add_vline(x=100 * chance, line_dash="dash", line_color="#555",
                      annotation_text=f"chance {100 * chance:.1f}%",
                      annotation_position="bottom right")  # fmt: skip
    fig.update_layout(
        title="Final validation accuracy per entry (best at the top)",
        xaxis={"title": "final validation accuracy (%), mean and 95% interval", "range": [0, 100]},
        yaxis={"title": "entry", "categoryorder": "array",
               "categoryarray": [s.entry for s in reversed(rows)]},
        height=160 + 28 * len(rows),
        legend={"traceorder": "reversed"},
    )  # fmt: skip
    return fig


def _curve_figure(groups: Mapping[str, list[RunResult]], colors: Mapping[str, str],
                  panels: Sequence[tuple[str, str]], scale: float, unit: str, ylabel: str,
                  title: str, chance: float | None, log: bool,
                  limits: tuple[float, float] | None = None) -> Any:  # fmt: skip
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [t for _, t in panels] if len(panels) > 1 else None  # one panel: one title
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, shared_yaxes=True)
    for col, (metric, _) in enumerate(panels, start=1):
        for label, runs in groups.items():
            x, mean, lo, hi = (v.tolist() for v in curves(runs, metric))

            def fix(vals: list[float]) -> list[float | None]:
                return [None if not math.isfinite(v) else scale * v for v in vals]

            band = go.Scatter(
                x=x + x[::-1], y=fix(hi) + fix(lo)[::-1], fill="toself", mode="lines",
                line={"width": 0}, fillcolor=_rgba(colors[label], 0.15), hoverinfo="skip",
                legendgroup=label, showlegend=False, name=label,
            )  # fmt: skip
            line = go.Scatter(
                x=x, y=fix(mean), mode="lines+markers", name=label, legendgroup=label,
                line={"color": colors[label], "width": 2}, marker={"size": 4},
                showlegend=col == 1,
                hovertemplate=f"<b>{label}</b><br>epoch %{{x}}<br>mean %{{y:.3g}}{unit}"
                "<extra></extra>",
            )  # fmt: skip
            fig.add_trace(band, row=1, col=col)
            fig.add_trace(line, row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
        if chance is not None:
            fig.add_hline(y=scale * chance, line_dash="dash", line_color="#555", row=1, col=col)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    fig.update_yaxes(type="log" if log else "linear")
    if limits is not None and limits[1] > limits[0]:  # diverged runs' values stay off the axis
        lo, hi = limits
        span = [math.log10(lo) - 0.05, math.log10(hi) + 0.05] if log and lo > 0 else [lo, hi]
        fig.update_yaxes(range=span)
    fig.update_layout(title=title, height=460, hovermode="closest")
    return fig


def figures(results: Sequence[RunResult], stats: Sequence[EntryStats]) -> list[Any]:
    """The report's three plotly figures (final values, accuracy curves, loss curves).

    Args:
        results: the runs.
        stats: their ranked statistics (:func:`initlab.lab.stats.summarise`).

    Returns:
        Three ``plotly.graph_objects.Figure``.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> from initlab.lab.stats import summarise
        >>> [len(f.data) for f in figures(runs, summarise(runs))]  # doctest: +SKIP
        [1, 2, 4]

    Raises:
        ImportError: plotly is not installed (:func:`available`).
    """
    order = [s.entry for s in stats]
    groups = group_runs(results, order)
    colors = entry_colors(order)
    chance = results[0].config.get("data", {}).get("chance") if results else None
    chance = float(chance) if isinstance(chance, (int, float)) else None
    runs = [r for rs in groups.values() for r in rs]
    losses = [r.metrics[m] for r in runs for m in ("train_loss", "val_loss")]
    finite = [v for vals in losses for v in vals if math.isfinite(v)]
    n = max((len(s.seeds) for s in stats), default=0)
    note = f"mean over {n} seeds, band min–max; click a legend entry to hide or show it"
    return [
        _final_figure(stats, colors, chance),
        _curve_figure(groups, colors, [("val_acc", "validation accuracy")], 100.0, "%",
                      "validation accuracy (%)", f"Validation accuracy ({note}; dashed: chance)",
                      chance, False),
        _curve_figure(groups, colors, [("train_loss", "training loss"),
                                       ("val_loss", "validation loss")], 1.0, "",
                      "cross-entropy", f"Loss ({note})", None, bool(finite) and min(finite) > 0,
                      loss_limits(results)),
    ]  # fmt: skip


def figure_divs(results: Sequence[RunResult], stats: Sequence[EntryStats]) -> list[str]:
    """:func:`figures` as HTML ``<div>`` snippets, plotly.js inlined in the first.

    Args:
        results: the runs.
        stats: their ranked statistics (:func:`initlab.lab.stats.summarise`).

    Returns:
        Three HTML strings.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> runs = [RunResult(f"k{s}", "kaiming", {}, s, {}, m, versions={}) for s in range(3)]
        >>> from initlab.lab.stats import summarise
        >>> divs = figure_divs(runs, summarise(runs))  # doctest: +SKIP
        >>> ["plotly.js" in d for d in divs]  # doctest: +SKIP
        [True, False, False]

    Raises:
        ImportError: plotly is not installed (:func:`available`).
    """
    return [
        fig.to_html(full_html=False, include_plotlyjs=i == 0, config=_CONFIG,
                    div_id=f"initlab-fig-{i}")
        for i, fig in enumerate(figures(results, stats))
    ]  # fmt: skip
