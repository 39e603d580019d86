"""``initlab presets``: the preset policies, one line each (name, what it does, source)."""

from __future__ import annotations

import click
from rich.table import Table

from ..policy import DEPRECATED_PRESETS, list_presets, preset_info
from ._common import console, print_json
from .options import json_option


@click.command("presets")
@json_option("the presets")
def presets_cmd(as_json: bool) -> None:
    """List the presets: what each does, and its source.

    Any of them is a policy: -p kaiming, -p gpt2:n_layers=12.
    """
    rows = [preset_info(name) for name in list_presets()]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"initlab presets ({len(rows)})")
    for col in ("name", "what it does", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        args = f"\n[dim]{', '.join(r['arguments'])}[/dim]" if r["arguments"] else ""
        table.add_row(r["name"] + args, r["summary"], r["source"])
    console.print(table)
    old = ", ".join(f"{o} -> {n}" for o, n in DEPRECATED_PRESETS.items())
    console.print(f"deprecated names (removed in the next release): {old}", markup=False)
