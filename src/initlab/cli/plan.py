"""``initlab plan MODEL --policy P`` and ``initlab init MODEL --policy P --seed N --out FILE``."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from ..apply import initialize
from ..factory import FactoryError, build_model
from ..plan import UnmatchedParametersError, plan
from ..policy import PolicyError
from ._common import console

_MODEL_HELP = "MODEL is 'package.module:factory' or 'path/to/file.py:factory'."


def _model(spec: str) -> torch.nn.Module:
    try:
        return build_model(spec)
    except FactoryError as e:
        raise click.ClickException(str(e)) from None


def _show(report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        click.echo(report.to_json())
    else:
        console.print(report.table())
        if report.unmatched:
            console.print(f"[yellow]{len(report.unmatched)} unmatched, left as they were[/yellow]")


@click.command("plan", epilog=_MODEL_HELP)
@click.argument("model")
@click.option("--policy", "-p", required=True, help="Preset name or policy file (YAML/TOML/JSON).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--strict", is_flag=True, help="Fail if any parameter matches no rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def plan_cmd(model: str, policy: str, seed: int, strict: bool, as_json: bool) -> None:
    """Show which rule would set every parameter of MODEL (touches no tensor)."""
    m = _model(model)
    try:
        report = plan(m, policy, seed, strict=strict)
    except (PolicyError, UnmatchedParametersError) as e:
        raise click.ClickException(str(e)) from None
    _show(report, as_json)


@click.command("init", epilog=_MODEL_HELP)
@click.argument("model")
@click.option("--policy", "-p", required=True, help="Preset name or policy file (YAML/TOML/JSON).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="state_dict file.")
@click.option("--strict", is_flag=True, help="Fail if any parameter matches no rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def init_cmd(model: str, policy: str, seed: int, out: str, strict: bool, as_json: bool) -> None:
    """Initialise MODEL by a policy and save its state_dict (torch.save) to --out."""
    m = _model(model)
    try:
        report = initialize(m, policy, seed, strict=strict)
    except (PolicyError, UnmatchedParametersError) as e:
        raise click.ClickException(str(e)) from None
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(m.state_dict(), path)
    _show(report, as_json)
    if not as_json:
        console.print(f"saved {len(m.state_dict())} tensors to {path}")
