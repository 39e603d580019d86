"""Reports of a comparison: terminal tables (rich), ``report.md`` and ``report.html``.

The tables rank the entries (see :mod:`initlab.lab.stats`) and give, for validation accuracy
(in %), validation loss and training loss, ``mean ± std [95% CI]`` across seeds, once after
epoch 2 and once after the last epoch. ``report.html`` is self-contained: CSS inline and the
curve PNGs embedded as base64 ``data:`` URIs, so it can be mailed or archived alone.
``report.md`` links the PNGs next to it.
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

from .plots import plot_curves
from .results import RunResult
from .stats import EntryStats, Summary, summarise

__all__ = [
    "REPORT_FILES",
    "describe_run",
    "format_cell",
    "render_html",
    "render_markdown",
    "rich_tables",
    "write_report",
]

REPORT_FILES = {"markdown": "report.md", "html": "report.html", "summary": "summary.json"}
COLUMNS = (("val_acc", "val acc %"), ("val_loss", "val loss"), ("train_loss", "train loss"))


def _num(metric: str, v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    if metric == "val_acc":
        return f"{100 * v:.1f}"
    return f"{v:.3g}"


def format_cell(metric: str, s: Summary | None) -> str:
    """``mean ± std [lo, hi]`` (accuracy in %), ``—`` when absent, a note for non-finite seeds."""
    if s is None or s.n == 0:
        return "diverged" if s is not None and s.n_nonfinite else "—"
    text = f"{_num(metric, s.mean)} ± {_num(metric, s.std)}"
    if s.ci is not None:
        text += f" [{_num(metric, s.ci[0])}, {_num(metric, s.ci[1])}]"
    if s.n_nonfinite:
        text += f" ({s.n_nonfinite} nan)"
    return text


def describe_run(results: Sequence[RunResult]) -> dict[str, Any]:
    """What was compared: model, data set, training config, runs, time, versions."""
    if not results:
        return {}
    first = results[0]
    config = dict(first.config)
    seeds = sorted({r.seed for r in results})
    modes = sorted({r.mode for r in results})
    return {
        "model": config.pop("model", "?"),
        "dataset": config.pop("dataset", "?"),
        "training": config,
        "entries": len({r.entry for r in results}),
        "seeds": seeds,
        "runs": len(results),
        "train_seconds": round(sum(r.wall_time for r in results), 2),
        "modes": modes,
        "versions": first.versions,
    }


def _points(stats: Sequence[EntryStats]) -> tuple[str, ...]:
    """``("early", "final")``, or only ``("final",)`` when epoch 2 is the last epoch or later."""
    if stats and stats[0].epochs["early"] == stats[0].epochs["final"]:
        return ("final",)
    return ("early", "final")


def _title(stats: Sequence[EntryStats], point: str) -> str:
    epoch = stats[0].epochs[point] if stats else 0
    return f"after epoch {epoch}" + (" (final)" if point == "final" else "")


def rich_tables(stats: Sequence[EntryStats]) -> list[Table]:
    """Rich tables after epoch 2 and after the last epoch, ranked by final accuracy."""
    tables = []
    diverged = any(s.n_diverged for s in stats)
    n = max((len(s.seeds) for s in stats), default=0)
    for point in _points(stats):
        table = Table(
            title=f"{_title(stats, point)} — mean ± std [95% CI] over {n} seeds",
            title_justify="left",
        )
        table.add_column("#", justify="right")
        table.add_column("entry", style="bold")
        for _, head in COLUMNS:
            table.add_column(head, justify="right")
        if diverged:
            table.add_column("diverged", justify="right")
        for s in stats:
            row = [str(s.rank), s.entry]
            row += [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
            if diverged:
                row.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
            table.add_row(*row)
        tables.append(table)
    return tables


def _md_table(stats: Sequence[EntryStats], point: str) -> list[str]:
    heads = ["#", "entry", *(h for _, h in COLUMNS), "diverged"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---:|" * 1 + "---|" + "---:|" * 4]
    for s in stats:
        cells = [str(s.rank), f"`{s.entry}`"]
        cells += [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
        cells.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _config_lines(meta: dict[str, Any]) -> list[str]:
    training = meta.get("training", {})
    train = ", ".join(f"{k}={v}" for k, v in training.items() if k != "eval_batch_size")
    return [
        f"model `{meta.get('model')}` on data set `{meta.get('dataset')}`; {train}",
        f"{meta.get('entries')} entries x {len(meta.get('seeds', []))} seeds "
        f"({meta.get('runs')} runs, {'/'.join(meta.get('modes', []))}), "
        f"training time {meta.get('train_seconds')} s",
        "versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
    ]


_NOTE = (
    "Cells: mean ± std (ddof=1) [95% Student-t confidence interval] across seeds; accuracy "
    "in %. Ranked by final validation accuracy, ties by final validation loss. Seeds with a "
    "non-finite value are left out of a cell and counted in it."
)


def render_markdown(
    stats: Sequence[EntryStats], meta: dict[str, Any], images: dict[str, Path]
) -> str:
    """The Markdown report (images linked by file name, relative to the report)."""
    lines = ["# initlab compare", ""]
    lines += [f"- {line}" for line in _config_lines(meta)]
    lines += ["", _NOTE, ""]
    for point in _points(stats):
        lines += [f"## {_title(stats, point).capitalize()}", "", *_md_table(stats, point), ""]
    lines += ["## Curves (and signal propagation at init, when measured)", ""]
    lines += [f"![{kind}]({Path(p).name})" for kind, p in images.items()]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.l,th.l{text-align:left}
img{max-width:100%;margin:1em 0}.note{color:#555;font-size:13px}code{background:#f4f4f4}
"""


def _html_table(stats: Sequence[EntryStats], point: str) -> str:
    heads = ["#", "entry", *(h for _, h in COLUMNS), "diverged"]
    out = ["<table><tr>"]
    out += [f'<th class="{"l" if h == "entry" else ""}">{html.escape(h)}</th>' for h in heads]
    out.append("</tr>")
    for s in stats:
        cells = [str(s.rank)]
        cells += [format_cell(m, s.metrics[point].get(m)) for m, _ in COLUMNS]
        cells.append(f"{s.n_diverged}/{len(s.seeds)}" if s.n_diverged else "")
        row = [f"<td>{html.escape(cells[0])}</td>", f'<td class="l">{html.escape(s.entry)}</td>']
        row += [f"<td>{html.escape(c)}</td>" for c in cells[1:]]
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(stats: Sequence[EntryStats], meta: dict[str, Any], images: dict[str, Path]) -> str:
    """The self-contained HTML report (inline CSS, PNGs as base64 data URIs)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>initlab compare</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>initlab compare</h1><ul>",
        *(f"<li>{html.escape(line)}</li>" for line in _config_lines(meta)),
        f'</ul><p class="note">{html.escape(_NOTE)}</p>',
    ]
    for point in _points(stats):
        parts += [f"<h2>{html.escape(_title(stats, point).capitalize())}</h2>"]
        parts.append(_html_table(stats, point))
    parts.append("<h2>Curves</h2>")
    for kind, path in images.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        alt = html.escape(f"{kind} curves")
        parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
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

    Returns ``{"loss": ..., "accuracy": ..., "markdown": ..., "html": ..., "summary": ...}``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stats = list(stats) if stats is not None else summarise(results)
    meta = describe_run(results)
    images = plot_curves(results, folder, order=[s.entry for s in stats])
    if (folder / "propagation.png").is_file():  # written by compare() at init
        images["propagation at init"] = folder / "propagation.png"
    paths: dict[str, Path] = dict(images)
    paths["markdown"] = folder / REPORT_FILES["markdown"]
    _atomic_write(paths["markdown"], render_markdown(stats, meta, images))
    paths["html"] = folder / REPORT_FILES["html"]
    _atomic_write(paths["html"], render_html(stats, meta, images))
    paths["summary"] = folder / REPORT_FILES["summary"]
    summary = {
        "meta": meta,
        "stats": [s.to_dict() for s in stats],
        "run_ids": [r.run_id for r in results],  # what this report covers; `report` reuses it
    }
    _atomic_write(paths["summary"], json.dumps(summary, indent=2, default=str) + "\n")
    return paths
