"""``initlab coordcheck``: coordinate sizes against width under SP and muP, with slopes."""

from __future__ import annotations

import json
import math

import click
from rich.console import Console
from rich.table import Table

from ..lab.coordcheck import DEFAULT_LR, DEFAULT_THRESHOLD, CoordCheck, coord_check
from ..lab.width import family_template, parse_widths
from ..lab.width_plots import LABELS, plot_coordcheck
from ._common import console, default_out_dir
from ._width import param_option, parse_params, save_record, threads_option
from .compare import parse_seeds
from .options import (
    Command,
    check_out_dir,
    check_out_file,
    data_option,
    json_option,
    json_out_option,
    model_option,
    out_option,
)


def _table(cc: CoordCheck, param: str) -> Table:
    flagged = cc.flagged(param)
    table = Table(title=f"{LABELS.get(param, param)}: slope of log mean|x| vs log width")
    table.add_column("layer")
    for t in range(cc.steps + 1):
        table.add_column(f"step {t}", justify="right")
    table.add_column(f"|last| > {cc.threshold:g}")
    for layer, slopes in cc.slopes(param).items():
        cells = ["n/a" if math.isnan(s) else f"{s:+.2f}" for s in slopes]
        flag = ""
        if layer in flagged:
            last = flagged[layer]
            flag = "no finite size" if math.isnan(last) else ("grows" if last > 0 else "shrinks")
        table.add_row(layer, *cells, f"[bold red]{flag}[/bold red]" if flag else "")
    return table


@click.command("coordcheck", cls=Command)
@click.argument("model_spec", metavar="[MODEL_SPEC]", required=False)
@model_option(help="The model family, as MODEL_SPEC (give one of the two; default mlp).")
@click.option(
    "--widths",
    default="64,128,256,512,1024",
    show_default=True,
    help="Comma-separated widths; the narrowest is muP's base.",
)
@click.option(
    "--width-field",
    default=None,
    help="The option that sets the width (n_embd, hidden_size...) when MODEL_SPEC has no "
    "{width} placeholder and no default family.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Optimizer updates; coordinates recorded at steps 0 (init) .. STEPS.",
)
@click.option(
    "--optimizer",
    type=click.Choice(list(DEFAULT_LR)),
    default="adam",
    show_default=True,
    help="adam, adamw, or plain sgd.",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Learning rate (default: adam 1e-2, sgd 0.1).",
)
@click.option(
    "--seeds",
    default=None,
    help="A count (seeds 0..n-1) or comma-separated seeds, averaged (default 3; 1 for a "
    "language model).",
)
@param_option()
@data_option(
    default="digits",
    show_default=True,
    help="Data set for classification models (language models read stdlib text).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Examples per step (default 64; 8 sequences for a language model).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Flag a layer whose |slope| at the last step exceeds this.",
)
@out_option(
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for coordcheck.png and coordcheck.json (default: a new folder under "
    "./initlab-out).",
)
@threads_option()
@json_option("the coordinate sizes, slopes and flags")
@json_out_option("the coordinate sizes, slopes and flags")
def coordcheck_cmd(
    model_spec: str | None,
    model: str | None,
    widths: str,
    width_field: str | None,
    steps: int,
    optimizer: str,
    lr: float | None,
    seeds: str | None,
    parametrisations: str,
    data: str,
    batch_size: int | None,
    threshold: float,
    out: str | None,
    threads: int,
    as_json: bool,
    json_out: str | None,
) -> None:
    """Coordinate sizes against width under SP and muP, with slopes.

    MODEL_SPEC is a model family: a spec with a {width} placeholder
    ('mlp:widths={width}-{width}', 'hf:gpt2?n_embd={width}&n_layer=2&n_head=4&vocab_size=256'),
    or 'mlp' / 'hf:gpt2' (their defaults), or any spec with --width-field. Each width trains
    STEPS updates on the same batches; each layer's mean |output| is recorded per step, the
    slope of its log against log width is fitted, and layers above the threshold are flagged.
    """
    if model_spec and model and model_spec != model:
        raise click.UsageError(f"two models given ({model_spec!r} and -m {model!r}); give one")
    template = family_template(model_spec or model or "mlp", width_field)
    width_list = parse_widths(widths)
    seed_arg = parse_seeds(seeds) if seeds else None
    seed_list = list(range(seed_arg)) if isinstance(seed_arg, int) else seed_arg
    params = parse_params(parametrisations)
    folder = check_out_dir(out) if out else default_out_dir("coordcheck")
    json_path = check_out_file(json_out) if json_out else None
    status = Console(stderr=True, highlight=False)
    cc = coord_check(
        template,
        width_list,
        steps=steps,
        optimizer=optimizer,
        lr=lr,
        seeds=seed_list,
        parametrisations=params,
        data=data,
        batch_size=batch_size,
        threshold=threshold,
        threads=threads,
        progress=lambda line: status.print(f"[dim]initlab: {line}[/dim]"),
    )
    folder.mkdir(parents=True, exist_ok=True)
    record = cc.to_dict()
    save_record(record, folder / "coordcheck.json", json_path)
    png = plot_coordcheck(cc, folder / "coordcheck.png")
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    for p in cc.coords:
        console.print(_table(cc, p))
    for p in cc.coords:
        flagged = cc.flagged(p)
        what = ", ".join(flagged) if flagged else "none"
        console.print(
            f"{LABELS.get(p, p)}: {len(flagged)} of {len(cc.coords[p])} layers flagged ({what})"
        )
        for note in cc.notes.get(p, []):
            console.print(f"  {LABELS.get(p, p)} note: {note}")
    console.print(f"{cc.seconds:.0f}s; plot: {png}; records: {folder / 'coordcheck.json'}")
