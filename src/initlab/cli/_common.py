"""Shared helpers for subcommands: the console and safe evaluation of a module expression."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click
import torch
from rich.console import Console

# Piped output gets a wide, stable layout instead of rich's 80-column default.
_probe = Console()
console = _probe if _probe.is_terminal else Console(width=160)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def build_module(expr: str) -> torch.nn.Module:
    """Evaluate a constructor expression such as ``nn.Conv2d(32, 32, 3, groups=32)``.

    Only ``nn`` and ``torch`` are in scope and builtins are removed: this is for typing a
    layer on the command line, not a sandbox for untrusted text.
    """
    try:
        obj = eval(expr, {"__builtins__": {}}, {"nn": torch.nn, "torch": torch})
    except Exception as e:
        raise click.BadParameter(
            f"could not build {expr!r}: {type(e).__name__}: {e}. "
            "Write a constructor call such as 'nn.Conv2d(16, 32, 3, groups=4)'",
            param_hint="MODULE_EXPR",
        ) from None
    if not isinstance(obj, torch.nn.Module):
        raise click.BadParameter(
            f"{expr!r} is a {type(obj).__name__}, not an nn.Module", param_hint="MODULE_EXPR"
        )
    return obj


def default_out_dir(kind: str = "") -> Path:
    """A new, unused folder ``./initlab-out/<timestamp>[-kind]`` (not created)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + (f"-{kind}" if kind else "")
    base = Path("initlab-out") / stamp
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{stamp}-{i}"), i + 1
    return path
