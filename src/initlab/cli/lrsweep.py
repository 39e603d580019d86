"""``initlab lrsweep``: loss against learning rate per width under SP and muP (TP5 Figure 1)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..lab.lrsweep import MIN_WIDTHS, TASKS, Cell, LRSweep, lr_sweep, parse_log2_range
from ..lab.width import parse_widths
from ..lab.width_plots import LABELS, plot_lrsweep
from ._common import console, default_out_dir
from ._width import param_option, parse_params, save_record, threads_option
from .compare import parse_seeds
from .options import (
    Command,
    check_out_dir,
    check_out_file,
    json_option,
    json_out_option,
    out_option,
)

CELLS = "cells.jsonl"
SETTINGS = "settings.json"


def _resume(folder: Path, settings: dict) -> list[Cell]:
    """The cells a previous run with the same settings measured in ``folder``."""
    if not (folder / SETTINGS).is_file() or not (folder / CELLS).is_file():
        return []
    if json.loads((folder / SETTINGS).read_text()) != settings:
        raise click.UsageError(
            f"--out {folder} holds a sweep with other settings; choose another folder"
        )
    cells = []
    for line in (folder / CELLS).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row["loss"] = math.nan if row["loss"] is None else row["loss"]
            cells.append(Cell(**row))
    return cells


def _table(sweep: LRSweep) -> Table:
    table = Table(title=f"optimal learning rate per width, task {sweep.task} (2^k)")
    table.add_column("width", justify="right")
    for p in sweep.parametrisations:
        table.add_column(f"{LABELS.get(p, p)} optimum", justify="right")
        table.add_column(f"{LABELS.get(p, p)} loss", justify="right")
    optima = {p: sweep.optima(p) for p in sweep.parametrisations}
    losses = {p: sweep.losses(p) for p in sweep.parametrisations}
    for w in sweep.widths:
        row = [str(w)]
        for p in sweep.parametrisations:
            k = optima[p].get(w)
            row += ["diverged", "-"] if k is None else [f"2^{k}", f"{losses[p][w][k]:.4f}"]
        table.add_row(*row)
    return table


@click.command("lrsweep", cls=Command)
@click.option(
    "--task",
    type=click.Choice(list(TASKS)),
    default="digits",
    show_default=True,
    help="digits: the MLP on digits; text: a char-level GPT-2 on stdlib sources.",
)
@click.option("--widths", default=None, help="Comma-separated widths (default: the task's).")
@click.option(
    "--lrs",
    "log2_lrs",
    default=None,
    help="The x2 grid as exponents of 2, LOW:HIGH (default: the task's).",
)
@click.option(
    "--seeds", default=None, help="A count or comma-separated seeds (default: the task's)."
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Updates per run (default: the task's).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Examples or sequences per step (default: the task's).",
)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@param_option()
@out_option(
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for lrsweep.png, lrsweep.json and the runs (cells.jsonl); a folder "
    "holding an interrupted sweep with the same settings resumes it.",
)
@threads_option()
@json_option("the sweep (cells, curves, optima, verdict)")
@json_out_option("the sweep")
def lrsweep_cmd(
    task: str,
    widths: str | None,
    log2_lrs: str | None,
    seeds: str | None,
    steps: int | None,
    batch_size: int | None,
    optimizer: str,
    parametrisations: str,
    out: str | None,
    threads: int,
    as_json: bool,
    json_out: str | None,
) -> None:
    """Loss vs learning rate per width under SP and muP (TP5 Fig. 1).

    Trains the task's model family over widths x learning rates (a x2 grid) x seeds under SP
    and muP, and reports each width's optimal learning rate and whether it stays put.
    """
    spec = TASKS[task]
    width_list = parse_widths(widths) if widths else list(spec.widths)
    lrs = (
        parse_log2_range(log2_lrs)
        if log2_lrs
        else list(range(spec.log2_lrs[0], spec.log2_lrs[1] + 1))
    )
    seed_arg = parse_seeds(seeds) if seeds else spec.seeds
    seed_list = list(range(seed_arg)) if isinstance(seed_arg, int) else seed_arg
    params = parse_params(parametrisations)
    folder = check_out_dir(out) if out else default_out_dir("lrsweep")
    json_path = check_out_file(json_out) if json_out else None
    # what a run's loss depends on besides its own key: other widths, rates or seeds add runs
    settings = {
        "task": task,
        "steps": steps or spec.steps,
        "batch_size": batch_size or spec.batch_size,
        "optimizer": optimizer,
    }
    wanted = {(p, w, k, s) for p in params for w in width_list for k in lrs for s in seed_list}
    done = [c for c in _resume(folder, settings) if c.key in wanted]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS).write_text(json.dumps(settings, indent=2))
    status = Console(stderr=True, highlight=False)
    if done:
        status.print(f"[dim]initlab: resuming: {len(done)} runs already in {folder / CELLS}[/dim]")

    with (folder / CELLS).open("a") as cells_file:

        def on_cell(cell: Cell) -> None:
            row = cell.__dict__ | {"loss": cell.loss if math.isfinite(cell.loss) else None}
            cells_file.write(json.dumps(row) + "\n")
            cells_file.flush()

        sweep = lr_sweep(
            task,
            widths=width_list,
            log2_lrs=lrs,
            seeds=seed_list,
            parametrisations=params,
            steps=steps,
            batch_size=batch_size,
            optimizer=optimizer,
            done=done,
            on_cell=on_cell,
            threads=threads,
            progress=lambda line: status.print(f"[dim]initlab: {line}[/dim]"),
        )
    record = sweep.to_dict()
    save_record(record, folder / "lrsweep.json", json_path)
    png = plot_lrsweep(sweep, folder / "lrsweep.png")
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    console.print(_table(sweep))
    for p, v in sweep.verdict().items():
        name = LABELS.get(p, p)
        if v["spread"] is None:
            console.print(f"{name}: every run diverged")
            continue
        if v["holds"]:
            says = "stays within one x2 step"
        elif v["spread"] > 1:
            says = "moves"
        else:
            says = f"stays within one x2 step, but {MIN_WIDTHS} widths are needed for the verdict,"

        console.print(
            f"{name}: the optimal learning rate {says} across {v['widths']} widths (spread "
            f"{v['spread']} steps of x2; widest minus narrowest: {v['shift']:+d})"
            + (
                f"; at the grid's edge for widths {v['at_edge']}: widen --lrs"
                if v["at_edge"]
                else ""
            )
        )
        for note in sweep.notes.get(p, []):
            console.print(f"  {name} note: {note}")
    console.print(f"plot: {png}; records: {folder / 'lrsweep.json'}")
