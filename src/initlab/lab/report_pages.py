"""A comparison's reports: terminal tables (rich), ``report.md``, ``report.html``, ``summary.json``.

Each report opens with the verdict (:mod:`initlab.lab.verdict`): which entries are best, tied
with the best, worse or failed. Then a glossary (each entry's formula, in its colour), then the
tables: for validation accuracy (in %), validation loss and training loss, ``mean ± std [95%
interval]`` across seeds, after epoch 2 and after the last epoch, each table ranked by its own
epoch. ``report.html`` is self-contained and works offline: CSS inline, interactive plotly
figures with plotly.js inlined (:mod:`initlab.lab.interactive`; hover for values, click the
legend to hide or show an entry) and the propagation PNG as a base64 ``data:`` URI. Without
plotly it embeds the static PNGs instead. ``report.md`` links the PNGs next to it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from . import interactive
from .entries import EntryError, describe_entry, resolve_entry
from .palette import entry_colors
from .plots import PLOT_FILES, plot_curves, plot_final
from .results import RunResult
from .stats import EntryStats, Summary, summarise
from .verdict import Verdict, decide

__all__ = [
    "REPORT_FILES",
    "describe_run",
    "format_cell",
    "glossary",
    "render_html",
    "render_markdown",
    "rich_tables",
    "write_report",
]

REPORT_FILES = {"markdown": "report.md", "html": "report.html", "summary": "summary.json"}
COLUMNS = (("val_acc", "val acc %"), ("val_loss", "val loss"), ("train_loss", "train loss"))


def _num(metric: str, v: float, digits: int = 3) -> str:
    if not math.isfinite(v):
        return "nan"
    if metric == "val_acc":
        return f"{100 * v:.{digits - 2}f}"
    return f"{v:#.{digits}g}".rstrip(".")


def _digits(metric: str, lo: float, hi: float) -> int:
    """The fewest digits (3 to 6) at which a nonzero-width interval's ends print differently,
    so ``[2.3, 2.3]`` never stands for a narrow interval."""
    for digits in range(3, 7):
        if _num(metric, lo, digits) != _num(metric, hi, digits):
            return digits
    return 6


def format_cell(metric: str, s: Summary | None) -> str:
    """``mean ± std [lo, hi]`` (accuracy in %), or what stands in for the interval.

    ``*`` marks an interval taken on the logit/log scale (the t interval would have left the
    metric's range); "n seeds identical" replaces a zero-width interval; "1 seed" a missing one;
    ``—`` an absent metric; a note counts non-finite seeds.

    Args:
        metric: ``val_acc`` (shown in %), ``val_loss`` or ``train_loss``.
        s: the summary, or None.

    Returns:
        The cell's text.

    Example:
        >>> format_cell("val_acc", Summary(0.939, 0.0, (0.939, 0.939), 3))
        '93.9 (3 seeds identical)'
    """
    if s is None or s.n == 0:
        return "diverged" if s is not None and s.n_nonfinite else "—"
    if s.identical:
        text = f"{_num(metric, s.mean)} ({s.n} seeds identical)"
    elif s.ci is None:
        text = f"{_num(metric, s.mean)} (1 seed)"
    else:
        mark = "*" if s.method != "t" else ""
        k = _digits(metric, *s.ci)
        text = (f"{_num(metric, s.mean, k)} ± {_num(metric, s.std)} "
                f"[{_num(metric, s.ci[0], k)}, {_num(metric, s.ci[1], k)}]{mark}")  # fmt: skip
    if s.n_nonfinite:
        text += f" ({s.n_nonfinite} nan)"
    return text


def describe_run(results: Sequence[RunResult]) -> dict[str, Any]:
    """What was compared: model, data set (sizes, chance), training settings, runs, versions.

    Args:
        results: the runs.

    Returns:
        Plain data for the header and ``summary.json`` (empty for no runs).

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> meta = describe_run(runs)
        >>> meta["model"], meta["training"], meta["runs"]
        ('mlp', {'optimizer': 'sgd', 'lr': 0.01}, 3)
    """
    if not results:
        return {}
    config = dict(results[0].config)
    training = {k: config[k] for k in ("optimizer", "lr", "batch_size", "epochs") if k in config}
    if config.get("optimizer") == "sgd" and "momentum" in config:
        training["momentum"] = config["momentum"]
    if config.get("weight_decay"):
        training["weight_decay"] = config["weight_decay"]
    return {
        "model": config.get("model", "?"),
        "dataset": config.get("dataset", "?"),
        "data": config.get("data", {}),
        "training": training,
        "entries": len({r.entry for r in results}),
        "seeds": sorted({r.seed for r in results}),
        "runs": len(results),
        "train_seconds": round(sum(r.wall_time for r in results), 2),
        "modes": sorted({r.mode for r in results}),
        "device": config.get("device", "cpu"),
        "versions": results[0].versions,
    }


def glossary(results: Sequence[RunResult]) -> dict[str, str]:
    """``{entry: one-line formula or description}`` for the entries of ``results``.

    Args:
        results: the runs (each entry's ``entry_config["spec"]`` is resolved again).

    Returns:
        One line per entry (:func:`initlab.lab.entries.describe_entry`).

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> glossary(runs)
        {'kaiming': "W ~ N(0, 2/fan_in): keeps ReLU activations' scale (He et al. 2015)"}
    """
    out: dict[str, str] = {}
    for r in results:
        if r.entry in out:
            continue
        try:
            out[r.entry] = describe_entry(resolve_entry(str(r.entry_config.get("spec", r.entry))))
        except (EntryError, OSError, ValueError):  # e.g. a policy file that has moved
            policy = r.entry_config.get("policy") or {}
            out[r.entry] = str(policy.get("description") or r.entry_config.get("spec", r.entry))
    return out


def _points(stats: Sequence[EntryStats]) -> tuple[str, ...]:
    """``("early", "final")``, or only ``("final",)`` when epoch 2 is the last epoch or later."""
    if stats and stats[0].epochs["early"] == stats[0].epochs["final"]:
        return ("final",)
    return ("early", "final")


def _ranked(stats: Sequence[EntryStats], point: str) -> list[EntryStats]:
    return sorted(stats, key=lambda s: s.ranks.get(point, s.rank))


def _title(stats: Sequence[EntryStats], point: str) -> str:
    epoch = stats[0].epochs[point] if stats else 0
    return f"after epoch {epoch}" + (" (final)" if point == "final" else ", ranked at this epoch")


def rich_tables(stats: Sequence[EntryStats]) -> list[Table]:
    """Rich tables after epoch 2 and after the last epoch, each ranked at its epoch.

    Args:
        stats: ranked entry statistics.

    Returns:
        One ``rich.table.Table`` per point.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> from initlab.lab.stats import summarise
        >>> [t.title[:18] for t in rich_tables(summarise(runs))]
        ['after epoch 2 (fin']
    """
    tables = []
    diverged = any(s.n_diverged for s in stats)
    n = max((len(s.seeds) for s in stats), default=0)
    colors = entry_colors(s.entry for s in stats)
    for point in _points(stats):
        table = Table(
            title=f"{_title(stats, point)} — mean ± std [95% interval] over {n} seeds",
            title_justify="left",
        )
        table.add_column("#", justify="right")
        table.add_column("entry", style="bold")
        for _, head in COLUMNS:
            table.add_column(head, justify="right")
        if diverged:
            table.add_column("diverged", justify="right")
        for s in _ranked(stats, point):
            row = [str(s.ranks.get(point, s.rank)), f"[{colors[s.entry]}]{s.entry}[/]"]
            row += [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
            if diverged:
                row.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
            table.add_row(*row)
        tables.append(table)
    return tables


def _md_table(stats: Sequence[EntryStats], point: str) -> list[str]:
    heads = ["#", "entry", *(h for _, h in COLUMNS), "diverged"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---:|" * 1 + "---|" + "---:|" * 4]
    for s in _ranked(stats, point):
        cells = [str(s.ranks.get(point, s.rank)), f"`{s.entry}`"]
        cells += [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
        cells.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _config_parts(meta: dict[str, Any]) -> list[list[tuple[str, bool]]]:
    """Header lines as (text, is_code) pieces: Markdown wraps code in backticks, HTML in <code>."""
    data = meta.get("data") or {}
    sizes = ""
    if data:
        sizes = (f" ({data.get('n_train')} training and {data.get('n_val')} validation "
                 f"examples, {data.get('classes')} classes, chance "
                 f"{100 * float(data.get('chance', 0)):.1f}%)")  # fmt: skip
    train = ", ".join(f"{k} {v}" for k, v in meta.get("training", {}).items())
    seeds = meta.get("seeds", [])
    return [
        [("model ", False), (str(meta.get("model")), True), (" on ", False),
         (str(meta.get("dataset")), True), (sizes, False)],
        [(f"training: {train}", False)],
        [(f"{meta.get('entries')} entries x {len(seeds)} seeds ({meta.get('runs')} runs, "
          f"{'/'.join(meta.get('modes', []))} on {meta.get('device', 'cpu')}), training time "
          f"{meta.get('train_seconds')} s", False)],
        [("versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
          False)],
    ]  # fmt: skip


def _md_line(parts: list[tuple[str, bool]]) -> str:
    return "".join(f"`{t}`" if code else t for t, code in parts)


def _html_line(parts: list[tuple[str, bool]]) -> str:
    return "".join(
        f"<code>{html.escape(t)}</code>" if code else html.escape(t) for t, code in parts
    )


_NOTE = (
    "Cells: mean ± std (ddof=1) [95% interval] across seeds; accuracy in %. Intervals are "
    "Student-t; * marks one taken on the logit (accuracy) or log (loss) scale because the t "
    'interval would have left the metric\'s range. "n seeds identical" means every seed gave '
    "the same value: no spread was measured, which is not certainty. Each table is ranked at "
    "its own epoch by validation accuracy, ties by validation loss. Seeds with a non-finite "
    "value are left out of a cell and counted in it."
)


def render_markdown(
    stats: Sequence[EntryStats],
    meta: dict[str, Any],
    images: dict[str, Path],
    verdict: Verdict | None = None,
    terms: dict[str, str] | None = None,
) -> str:
    """The Markdown report (images linked by file name, relative to the report).

    Args:
        stats: ranked entry statistics.
        meta: :func:`describe_run`.
        images: ``{kind: PNG path}``.
        verdict: the paragraph to open with, or None.
        terms: :func:`glossary`, or None.

    Returns:
        The Markdown text.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> from initlab.lab.stats import summarise
        >>> render_markdown(summarise(runs), describe_run(runs), {}).splitlines()[2]
        '- model `mlp` on `digits`'
    """
    lines = ["# initlab compare", ""]
    if verdict is not None:
        lines += [f"**{verdict.text}**", ""]
    lines += [f"- {_md_line(parts)}" for parts in _config_parts(meta)]
    if terms:
        lines += ["", "## Entries", "", "| entry | what it does (biases 0 unless said) |",
                  "|---|---|"]  # fmt: skip
        lines += [f"| `{e}` | {terms[e]} |" for s in stats if (e := s.entry) in terms]
    lines += ["", _NOTE, ""]
    for point in _points(stats):
        lines += [f"## {_title(stats, point).capitalize()}", "", *_md_table(stats, point), ""]
    lines += ["## Figures", ""]
    lines += [f"![{kind}]({Path(p).name})" for kind, p in images.items()]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.l,th.l{text-align:left;white-space:normal}
img{max-width:100%;margin:1em 0}.note{color:#555;font-size:13px}code{background:#f4f4f4}
.verdict{background:#f6f8fa;border-left:4px solid #1f77b4;padding:.8em 1em;font-size:15px}
.sw{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin-right:.4em;
vertical-align:middle}.figure{margin:1.5em 0}
"""


def _swatch(color: str) -> str:
    return f'<span class="sw" style="background:{color}"></span>'


def _html_table(stats: Sequence[EntryStats], point: str, colors: dict[str, str]) -> str:
    heads = ["#", "entry", *(h for _, h in COLUMNS), "diverged"]
    out = ["<table><tr>"]
    out += [f'<th class="{"l" if h == "entry" else ""}">{html.escape(h)}</th>' for h in heads]
    out.append("</tr>")
    for s in _ranked(stats, point):
        cells = [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
        cells.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
        row = [f"<td>{s.ranks.get(point, s.rank)}</td>",
               f'<td class="l">{_swatch(colors[s.entry])}{html.escape(s.entry)}</td>']  # fmt: skip
        row += [f"<td>{html.escape(c)}</td>" for c in cells]
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img(kind: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(kind)}" src="data:image/png;base64,{data}">'


def render_html(
    stats: Sequence[EntryStats],
    meta: dict[str, Any],
    images: dict[str, Path],
    verdict: Verdict | None = None,
    terms: dict[str, str] | None = None,
    figures: Sequence[str] = (),
) -> str:
    """The self-contained HTML report: inline CSS, the interactive ``figures`` (HTML snippets
    with plotly.js inlined), else the PNGs of ``images``, as base64 data URIs.

    Args:
        stats, meta, images, verdict, terms: as for :func:`render_markdown`.
        figures: HTML snippets (:func:`initlab.lab.interactive.figure_divs`), or none.

    Returns:
        The HTML text.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> from initlab.lab.stats import summarise
        >>> page = render_html(summarise(runs), describe_run(runs), {})
        >>> "<code>mlp</code>" in page and "`" not in page
        True
    """
    colors = entry_colors(s.entry for s in stats)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>initlab compare</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>initlab compare</h1>",
    ]
    if verdict is not None:
        parts.append(f'<p class="verdict">{html.escape(verdict.text)}</p>')
    parts += ["<ul>", *(f"<li>{_html_line(p)}</li>" for p in _config_parts(meta)), "</ul>"]
    if terms:
        parts += ['<h2>Entries</h2><table><tr><th class="l">entry</th>'
                  '<th class="l">what it does (biases 0 unless said)</th></tr>']  # fmt: skip
        parts += [f'<tr><td class="l">{_swatch(colors[e])}<code>{html.escape(e)}</code></td>'
                  f'<td class="l">{html.escape(terms[e])}</td></tr>'
                  for s in stats if (e := s.entry) in terms]  # fmt: skip
        parts.append("</table>")
    parts.append(f'<p class="note">{html.escape(_NOTE)}</p>')
    for point in _points(stats):
        parts += [f"<h2>{html.escape(_title(stats, point).capitalize())}</h2>"]
        parts.append(_html_table(stats, point, colors))
    parts.append("<h2>Figures</h2>")
    if figures:
        parts += [f'<div class="figure">{f}</div>' for f in figures]
        extra = {k: p for k, p in images.items() if k not in PLOT_FILES}
    else:
        extra = images
    parts += [_img(kind, path) for kind, path in extra.items()]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(
    folder: str | os.PathLike[str],
    results: Sequence[RunResult],
    stats: Sequence[EntryStats] | None = None,
) -> dict[str, Path]:
    """Write the PNGs, ``report.md``, ``report.html`` and ``summary.json`` into ``folder``.

    Args:
        folder: where to write (created if needed).
        results: the runs.
        stats: their :func:`~initlab.lab.stats.summarise` (computed when None).

    Returns:
        ``{"final": ..., "accuracy": ..., "loss": ..., ["propagation at init": ...,]
        "markdown": ..., "html": ..., "summary": ...}``.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.4, 0.2], "val_loss": [2.3, 0.5, 0.3],
        ...      "val_acc": [0.1, 0.8, 0.9]}
        >>> cfg = {"model": "mlp", "dataset": "digits", "optimizer": "sgd", "lr": 0.01}
        >>> runs = [RunResult(f"k{s}", "kaiming", {"spec": "kaiming"}, s, cfg, m, versions={})
        ...         for s in range(3)]
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(write_report(tmp, runs))
        ['accuracy', 'final', 'html', 'loss', 'markdown', 'summary']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stats = list(stats) if stats is not None else summarise(results)
    meta = describe_run(results)
    verdict = decide(results, stats)
    terms = glossary(results)
    colors = entry_colors(s.entry for s in stats)
    chance = meta.get("data", {}).get("chance")
    images: dict[str, Path] = {
        "final": plot_final(stats, folder / PLOT_FILES["final"], colors, chance),
        **plot_curves(results, folder, order=[s.entry for s in stats], colors=colors),
    }
    if (folder / "propagation.png").is_file():  # written by compare() at init
        images["propagation at init"] = folder / "propagation.png"
    figures = interactive.figure_divs(results, stats) if interactive.available() else []
    paths: dict[str, Path] = dict(images)
    paths["markdown"] = folder / REPORT_FILES["markdown"]
    _atomic_write(paths["markdown"], render_markdown(stats, meta, images, verdict, terms))
    paths["html"] = folder / REPORT_FILES["html"]
    _atomic_write(paths["html"], render_html(stats, meta, images, verdict, terms, figures))
    paths["summary"] = folder / REPORT_FILES["summary"]
    summary = {
        "meta": meta,
        "verdict": verdict.to_dict(),
        "glossary": terms,
        "stats": [s.to_dict() for s in stats],
        "run_ids": [r.run_id for r in results],  # what this report covers; `report` reuses it
    }
    _atomic_write(paths["summary"], json.dumps(summary, indent=2, default=str) + "\n")
    return paths
