"""``initlab compare`` (train one network under many init schemes) and ``initlab report FOLDER``.

Errors (bad specs, data, files) propagate to the command line's one-line error handler.
"""

from __future__ import annotations

import json

import click

from ..lab.entries import DEFAULT_ENTRIES, ENTRY_FORMULAS
from ..lab.experiment import DEFAULTS, PRESETS, ComparisonResult, compare, report
from ..lab.process_group import is_distributed
from ..lab.report_pages import rich_tables
from ..lab.trainer import OPTIMIZERS
from ._common import console, default_out_dir
from .options import (
    Command,
    check_out_dir,
    data_option,
    deprecated_alias,
    json_option,
    model_option,
    out_option,
    policy_option,
)


def split_entries(values: tuple[str, ...]) -> list[str]:
    """Entries from repeated/comma-separated ``--policy`` values.

    A comma-separated piece that has ``=`` but no ``:`` continues the previous entry's
    parameters, so ``xavier,kaiming_normal:mode=fan_out,nonlinearity=relu`` is two entries.
    """
    out: list[str] = []
    for value in values:
        current: list[str] = []
        for piece in (p.strip() for p in value.split(",")):
            if not piece:
                continue
            if current and "=" in piece and ":" not in piece:
                current.append(piece)
                continue
            if current:
                out.append(",".join(current))
            current = [piece]
        if current:
            out.append(",".join(current))
    return out


def parse_seeds(text: str) -> int | list[int]:
    """``"3"`` -> 3 seeds (0, 1, 2); ``"0,5,7"`` -> those seeds."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a count (3) or comma-separated seeds (0,5,7)", param_hint="--seeds"
        ) from None


def _show(result: ComparisonResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    for table in rich_tables(result.stats):
        console.print(table)
    if result.skipped:
        console.print(f"{result.skipped} runs were already in the folder, {result.trained} trained")
    if result.out is not None:
        console.print(f"report: {result.paths.get('html', result.out)}")
        console.print(f"output folder: {result.out}")
    console.print(result.verdict.text, style="bold", highlight=False)  # the last lines


def _preset_help(key: str) -> str:
    return f"(default: {' / '.join(f'{p} {v[key]}' for p, v in PRESETS.items())})"


_GLOSSARY = "\b\nEntries (W: every weight; biases 0 unless said):\n" + "\n".join(
    f"  {name:<17}{formula}" for name, formula in ENTRY_FORMULAS.items()
)


@click.command("compare", cls=Command, epilog=_GLOSSARY)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="depth",
    show_default=True,
    help="depth: a plain 20-layer ReLU net with SGD, where the init decides the outcome; "
    "seeds: the seeds' shallow MLP with Adam. Options given explicitly override it.",
)
@model_option(
    help="mlp[:widths=256-128,activation=relu], cnn[:batchnorm=true], "
    "deep[:depth=30,activation=tanh], resmlp, or pkg.module:factory / file.py:factory "
    + _preset_help("model")
)
@data_option(default=DEFAULTS["dataset"], show_default=True)
@deprecated_alias("--dataset", "data", "--data")
@policy_option(
    multiple=True,
    help="Entries, comma separated or repeated: the defaults "
    f"({', '.join(DEFAULT_ENTRIES)}), 'default' for all of them, any scheme with "
    "parameters (kaiming_normal:mode=fan_out), a preset (gpt2:n_layers=2) or a "
    "policy file.",
)
@deprecated_alias("--schemes", "policy", "--policy", multiple=True)
@deprecated_alias("-s", "policy", "--policy", multiple=True)
@click.option(
    "--seeds",
    default=str(DEFAULTS["seeds"]),
    show_default=True,
    help="A count (seeds 0..n-1) or comma-separated seeds; 3 or more for a verdict.",
)
@click.option("--epochs", type=click.IntRange(min=1), help=_preset_help("epochs"))
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    help="sgd uses momentum 0.9 " + _preset_help("optimizer"),
)
@click.option("--lr", type=float, help=_preset_help("lr"))
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=DEFAULTS["batch_size"], show_default=True
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, mps...")
@out_option(
    type=click.Path(file_okay=False),
    help="Output folder (default: a new ./initlab-out/<timestamp>). Finished runs "
    "already there are skipped.",
)
@click.option("--sequential", is_flag=True, help="Train one run at a time (no vmap).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option("the summary")
def compare_cmd(preset: str, model: str | None, data: str, policy: tuple[str, ...], seeds: str,
                epochs: int | None, optimizer: str | None, lr: float | None, batch_size: int,
                device: str, out: str | None, sequential: bool, no_progress: bool,
                as_json: bool) -> None:  # fmt: skip
    """Train one network under many init schemes and seeds.

    Tables, curves and a report.

    Runs of one architecture train together as one vmapped model. Under torchrun
    (torchrun --nproc-per-node N -m initlab compare ...) the runs are split across processes
    and rank 0 writes the folder.
    """
    entries = split_entries(policy) or None
    folder = check_out_dir(out) if out else default_out_dir()
    given = {"model": model, "epochs": epochs, "optimizer": optimizer, "lr": lr}
    chosen = {k: PRESETS[preset][k] if v is None else v for k, v in given.items()}
    result = compare(
        **chosen, dataset=data, entries=entries, seeds=parse_seeds(seeds),
        batch_size=batch_size, device=device,
        out=folder, sequential=sequential, progress=not no_progress and not as_json,
    )  # fmt: skip
    if is_distributed() and result.out is None:
        return  # not rank 0: rank 0 reports
    _show(result, as_json)


@click.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
@json_option("the summary")
def report_cmd(folder: str, as_json: bool) -> None:
    """Rebuild a compare folder's tables, curves and reports.

    The tables, curves, report.md and report.html, from FOLDER/runs.jsonl.
    """
    _show(report(folder), as_json)
