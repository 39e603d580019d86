"""Flags and output shared by the width experiments, ``initlab coordcheck`` and ``lrsweep``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..lab.width import PARAMETRISATIONS

F = TypeVar("F", bound=Callable[..., Any])


def param_option() -> Callable[[F], F]:
    """``--param sp,mup``: which parametrisations to run (read with :func:`parse_params`)."""
    return click.option(
        "--param",
        "parametrisations",
        default="sp,mup",
        show_default=True,
        help="Parametrisations to run: sp, mup or both.",
    )


def threads_option() -> Callable[[F], F]:
    """``--threads N`` (default 1: fastest for these small models on a shared machine)."""
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="torch threads (one is fastest for these small models on a shared machine).",
    )


def parse_params(text: str) -> list[str]:
    """The parametrisations of ``--param``, checked: a one-line error names the choices.

    Example:
        >>> parse_params("sp, mup")
        ['sp', 'mup']
    """
    params = [p.strip() for p in text.split(",") if p.strip()]
    if not params or any(p not in PARAMETRISATIONS for p in params):
        raise click.BadParameter(f"{text!r}: give sp, mup or sp,mup", param_hint="--param")
    return params


def save_record(record: dict[str, Any], path: Path, json_path: Path | None) -> None:
    """Write the experiment's JSON record to ``path`` (and to ``--json-out``, when given)."""
    path.write_text(json.dumps(record, indent=2))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2))
