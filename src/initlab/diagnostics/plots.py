"""Figures of signal propagation (matplotlib, Agg canvas; nothing is ever shown).

* :func:`plot_propagation`: activation std and back-propagated gradient std versus depth, one
  line per scheme, log y axis (He et al. 2015, Fig. 2-3 style).
* :func:`plot_histograms`: per-layer histograms of activation values (or of back-propagated
  gradients), one row per scheme, layers overlaid (Glorot & Bengio 2010, Fig. 6-7 style).

Both accept a :class:`~initlab.diagnostics.scheme_comparison.SchemeComparison`, a single
:class:`~initlab.diagnostics.records.Diagnosis`, or a mapping label -> Diagnosis, and return the
path written. Figures are built with ``matplotlib.figure.Figure`` and an Agg canvas, so
pyplot's global state and the interactive backend are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .records import Diagnosis, LayerRecord
from .scheme_comparison import SchemeComparison


def _diagnoses(obj: SchemeComparison | Diagnosis | Mapping[str, Diagnosis]) -> dict[str, Diagnosis]:
    if isinstance(obj, SchemeComparison):
        return dict(obj.diagnoses)
    if isinstance(obj, Diagnosis):
        return {"model": obj}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected a SchemeComparison, a Diagnosis or a mapping, got {type(obj)}")


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


def _styles(n: int) -> list[dict[str, Any]]:
    """Distinct line styles for ``n`` schemes: ten colours, then dashed and dotted repeats."""
    dashes = ("-", "--", ":")
    return [{"color": f"C{i % 10}", "linestyle": dashes[(i // 10) % 3]} for i in range(n)]


def plot_propagation(
    comparison: SchemeComparison | Diagnosis | Mapping[str, Diagnosis],
    path: str | Path,
    *,
    layers: str = "weights",
    title: str | None = None,
    dpi: int = 100,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Two panels, std of layer outputs and of dL/d outputs versus depth, log y, one line per
    scheme. ``layers="weights"`` plots the weight layers (pre-activations), ``"all"`` every
    recorded call.

    Args:
        comparison: a :class:`SchemeComparison`, one Diagnosis, or label -> Diagnosis.
        path: the image file to write (format from its suffix).
        layers: ``"weights"`` or ``"all"``.
        title: the figure title.
        dpi: the resolution.
        colors: ``{scheme: colour}``; other schemes take matplotlib's cycle.

    Returns:
        ``path``, as a Path.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = plot_propagation(diagnose(model, x), Path(tmp) / "propagation.png")
        ...     out.name, out.stat().st_size > 0
        ('propagation.png', True)
    """
    diags = _diagnoses(comparison)
    fig, axes = _figure(1, 2, (11, 4.2))
    panels = (("output_std", "activation std (forward)"),
              ("grad_output_std", "gradient std (backward)"))  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    styles = _styles(len(diags))
    for name, style in zip(diags, styles, strict=True):
        if colors and name in colors:
            style["color"] = colors[name]
    absent: set[str] = set()
    for ax, (field, label) in zip(axes[0], panels, strict=True):
        for (name, d), style in zip(diags.items(), styles, strict=True):
            ys = d.series(field, layers)
            pts = [(i, y) for i, y in enumerate(ys) if y is not None and y > 0]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name, **style)
            else:
                absent.add(name)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("depth (weight layer)" if layers == "weights" else "depth (layer call)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    if absent:  # an all-zero signal (e.g. zeros init) has no place on a log axis
        fig.text(0.01, 0.01, f"no positive std to plot: {', '.join(sorted(absent))}",
                 fontsize="small", color="0.4")  # fmt: skip
    fig.suptitle(title or "signal propagation")
    return _save(fig, path, dpi)


def _pick(d: Diagnosis, layers: Sequence[int | str] | str | None, max_layers: int) -> list:
    if layers is None:
        recs = [r for r in d.records if r.role == "activation"] or d.weight_records()
    elif layers == "weights":
        recs = d.weight_records()
    elif layers == "activations":
        recs = [r for r in d.records if r.role == "activation"]
    elif layers == "all":
        recs = list(d.records)
    elif isinstance(layers, str):
        raise ValueError(f"layers must be None, 'weights', 'activations', 'all' or a list, "
                         f"got {layers!r}")  # fmt: skip
    else:
        by_label = {r.label: r for r in d.records}
        recs = [d.records[x] if isinstance(x, int) else by_label[x] for x in layers]
        return recs
    if len(recs) > max_layers > 1:  # evenly spaced, first and last included
        n = len(recs) - 1
        recs = [recs[round(i * n / (max_layers - 1))] for i in range(max_layers)]
    return recs


def _linthresh(diags: Mapping[str, Diagnosis]) -> float:
    """The linear range of the symlog axis: the smallest typical |value| among the layers."""
    scales = [
        max(abs(h.edges[0]), abs(h.edges[-1]))
        for d in diags.values()
        for r in d.records
        for h in (r.histogram,)
        if h is not None
    ]
    return max(min(scales, default=1.0) / 10, 1e-12)


def plot_histograms(
    comparison: SchemeComparison | Diagnosis | Mapping[str, Diagnosis],
    path: str | Path,
    layers: Sequence[int | str] | str | None = None,
    *,
    quantity: str = "activation",
    max_layers: int = 6,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Normalised histograms of layer outputs (``quantity="activation"``) or of dL/d outputs
    (``"gradient"``): one row per scheme, the selected layers overlaid (Glorot & Bengio 2010).
    Each histogram spans the central 99% of its values; ReLU-family outputs leave their exact
    zeros out (the dead half), so the shape of the positive part stays visible. The x axis is
    symmetric-log, so layers whose scale collapses with depth stay visible beside the first.

    Args:
        layers: None (activation modules, else weight layers), ``"weights"``,
            ``"activations"``, ``"all"``, or a list of record indices/labels; named groups are
            thinned to ``max_layers`` evenly spaced layers.
        quantity: ``"activation"`` or ``"gradient"``.

    The diagnoses must have been made with ``bins > 0`` (``compare_schemes`` stores 50 bins).

    Returns:
        ``path``, as a Path.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = plot_histograms(diagnose(model, x, bins=20), Path(tmp) / "hist.png")
        ...     out.name, out.stat().st_size > 0
        ('hist.png', True)
    """
    if quantity not in ("activation", "gradient"):
        raise ValueError(f"quantity must be 'activation' or 'gradient', got {quantity!r}")
    diags = _diagnoses(comparison)
    attr = "histogram" if quantity == "activation" else "grad_histogram"
    fig, axes = _figure(len(diags), 1, (8, 2.6 * len(diags) + 0.6))
    for ax, (name, d) in zip(axes[:, 0], diags.items(), strict=True):
        recs: list[LayerRecord] = _pick(d, layers, max_layers)
        drawn = 0
        for r in recs:
            h = getattr(r, attr)
            if h is None:
                continue
            counts, edges = np.asarray(h.counts, float), np.asarray(h.edges, float)
            share = counts / max(counts.sum(), 1.0)  # densities of layers at 1e-5 and 1 don't mix
            ax.stairs(share, edges, label=f"{r.kind} {r.label}")
            drawn += 1
        if not drawn:
            raise ValueError(f"{name}: no {quantity} histograms stored; diagnose with bins > 0")
        ax.set_title(name, fontsize="medium")
        ax.set_ylabel("share per bin")
        ax.set_xscale("symlog", linthresh=_linthresh(diags))
        ax.legend(fontsize="x-small", ncol=2)
    axes[-1][0].set_xlabel("activation value" if quantity == "activation" else "gradient value")
    fig.suptitle(title or f"{quantity} histograms per layer")
    return _save(fig, path, dpi)
