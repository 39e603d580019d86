"""``initlab schemes``: the catalogue as a table (or JSON)."""

from __future__ import annotations

import dataclasses
import inspect

import click
from rich.table import Table

from ..lab.entries import ENTRY_FORMULAS, PRESET_ENTRIES, SEED_ENTRIES
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


def _entry_rows() -> list[dict[str, str]]:
    """The lab's named entries (``initlab compare -p NAME``): formula and what each expands to."""
    rows = []
    for name, formula in ENTRY_FORMULAS.items():
        if name in SEED_ENTRIES:
            cfg = SEED_ENTRIES[name][0]
            args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "name")
            runs = f"every weight {cfg['name']}({args}), biases 0"
        elif name in PRESET_ENTRIES:
            runs = f"preset {PRESET_ENTRIES[name]}"
        else:
            runs = "orthogonal weights, then LSUV on a data batch" if name == "lsuv" else name
        rows.append({"name": name, "formula": formula, "runs": runs})
    return rows


@click.command("schemes")
@json_option("the catalogue")
def schemes_cmd(as_json: bool) -> None:
    """List every scheme and lab entry with its formula.

    Schemes: name (and aliases), formula or one-line description, parameters and paper. Any of
    them is also a policy: -p xavier_uniform initialises every parameter with it. Lab entries:
    the named entries of initlab compare/diagnose (-p kaiming), each with its formula.
    --json gives {"schemes": [...], "lab_entries": [...]}.
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
    entries = _entry_rows()
    if as_json:
        print_json({"schemes": rows, "lab_entries": entries})
        return
    table = Table(title=f"initlab schemes ({len(rows)})", show_lines=False)
    for col in ("name", "formula", "parameters", "paper"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (f"\n[dim]{', '.join(r['aliases'])}[/dim]" if r["aliases"] else "")
        table.add_row(name, r["formula"], r["parameters"], r["paper"])
    console.print(table)
    lab = Table(title=f"lab entries ({len(entries)}): initlab compare/diagnose -p NAME")
    for col in ("name", "formula", "runs"):
        lab.add_column(col, overflow="fold")
    for r in entries:
        lab.add_row(r["name"], r["formula"], r["runs"])
    console.print(lab)
