"""``initlab gain ACTIVATION``: torch's conventional gain and the second-moment gain."""

from __future__ import annotations

import click

from ..gain import calculate_gain, gain
from ._common import console, print_json
from .options import json_option


@click.command("gain")
@click.argument("activation")
@click.option("--param", type=float, default=None, help="Slope / alpha / beta of the activation.")
@json_option("both gains")
def gain_cmd(activation: str, param: float | None, as_json: bool) -> None:
    """Gain of an activation: torch's and second-moment.

    torch's table (if listed) and 1/sqrt(E[f(z)^2]), z ~ N(0, 1).
    """
    try:
        numeric = gain(activation, param)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    try:
        conventional: float | None = calculate_gain(activation, param)  # type: ignore[arg-type]
    except ValueError:
        conventional = None
    if as_json:
        print_json({"activation": activation, "param": param, "second_moment": numeric,
                    "torch": conventional})  # fmt: skip
        return
    console.print(f"[bold]{activation}[/bold]" + (f" (param={param})" if param is not None else ""))
    console.print(f"  second-moment gain 1/sqrt(E[f(z)^2]): {numeric:.10g}", markup=False)
    if conventional is not None:
        console.print(f"  torch.nn.init.calculate_gain:         {conventional:.10g}")
    else:
        console.print("  torch.nn.init.calculate_gain:         (not in torch's table)")
