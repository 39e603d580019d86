"""``initlab schemes``: the catalogue as a table (or JSON)."""

from __future__ import annotations

import dataclasses
import inspect

import click
from rich.table import Table

from ..schemes import aliases, list_schemes
from ._common import console, print_json
from .options import json_option


def _params(cls: type) -> str:
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else "required"
        out.append(f"{f.name}={default!r}" if default != "required" else f"{f.name} (required)")
    return ", ".join(out) or "-"


def _summary(cls: type) -> str:
    return (inspect.getdoc(cls) or "-").split("\n\n")[0].replace("\n", " ")


@click.command("schemes")
@json_option("the catalogue")
def schemes_cmd(as_json: bool) -> None:
    """List every scheme with its formula.

    Name (and aliases), formula or one-line description, parameters and paper. Any of them is
    also a policy: -p xavier_uniform initialises every parameter with it.
    """
    alias_of: dict[str, list[str]] = {}
    for a, target in aliases().items():
        alias_of.setdefault(target, []).append(a)
    rows = [
        {
            "name": cls.name,
            "aliases": sorted(alias_of.get(cls.name, [])),
            "formula": cls.formula or _summary(cls),
            "parameters": _params(cls),
            "paper": cls.paper,
            "uses_fans": cls.uses_fans if isinstance(cls.uses_fans, bool) else "per_block",
        }
        for cls in list_schemes()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"initlab schemes ({len(rows)})", show_lines=False)
    for col in ("name", "formula", "parameters", "paper"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (f"\n[dim]{', '.join(r['aliases'])}[/dim]" if r["aliases"] else "")
        table.add_row(name, r["formula"], r["parameters"], r["paper"])
    console.print(table)
