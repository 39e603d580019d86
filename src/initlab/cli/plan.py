"""``initlab plan MODEL -p P`` and ``initlab init MODEL -p P --seed N --out FILE_OR_DIR``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import torch

from ..apply import initialize
from ..plan import UnmatchedParametersError, plan
from ..policy import PolicyError
from ..specs import build_model
from ..zoo import ModelError
from ._common import console

_MODEL_HELP = "MODEL is 'package.module:factory' or 'path/to/file.py:factory'."


def _model(spec: str) -> torch.nn.Module:
    try:
        return build_model(spec)
    except ModelError as e:
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


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "float64": torch.float64}  # fmt: skip


def _is_folder(out: str) -> bool:
    """--out names a folder: it ends with a separator, is an existing folder, or has no suffix."""
    path = Path(out)
    return out.endswith(("/", os.sep)) or path.is_dir() or not path.suffix


_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9,
          "B": 1}  # fmt: skip


def _size(text: str) -> int:
    """Bytes from a size such as ``5GB``, ``500MiB`` or ``1000000``."""
    t = text.strip().upper()
    unit = next((u for u in _UNITS if t.endswith(u)), "")
    try:
        value = int(float(t[: len(t) - len(unit)]) * _UNITS.get(unit, 1))
    except ValueError:
        value = 0
    if value < 1:
        raise click.BadParameter(f"{text!r} is not a positive size such as 5GB or 500MiB",
                                 param_hint="--max-shard-size")  # fmt: skip
    return value


@click.command("init", epilog=_MODEL_HELP)
@click.argument("model")
@click.option("--policy", "-p", required=True, help="Preset name or policy file (YAML/TOML/JSON).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    required=True,
    help="A state_dict file (torch.save), or a folder (ends with '/', has no suffix, or is an "
    "existing empty folder): the model is built on the meta device and streamed into sharded "
    "safetensors files with an index and a report.",
)
@click.option(
    "--dtype",
    type=click.Choice(sorted(_DTYPES)),
    default=None,
    help="Floating dtype of parameters and floating buffers (default: as built).",
)
@click.option(
    "--max-shard-size",
    default="5GB",
    show_default=True,
    help="Largest safetensors file when --out is a folder (e.g. 2GB, 500MiB).",
)
@click.option("--strict", is_flag=True, help="Fail if any parameter matches no rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def init_cmd(
    model: str,
    policy: str,
    seed: int,
    out: str,
    dtype: str | None,
    max_shard_size: str,
    strict: bool,
    as_json: bool,
) -> None:
    """Initialise MODEL by a policy and save it to --out (a state_dict file or a folder)."""
    torch_dtype = None if dtype is None else _DTYPES[dtype]
    if _is_folder(out):
        _stream(model, policy, seed, out, torch_dtype, _size(max_shard_size), strict, as_json)
        return
    m = _model(model)
    if torch_dtype is not None:
        m = m.to(torch_dtype)
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


def _stream(
    spec: str,
    policy: str,
    seed: int,
    out: str,
    dtype: torch.dtype | None,
    max_bytes: int,
    strict: bool,
    as_json: bool,
) -> None:
    from ..checkpoint import write_checkpoint
    from ..materialize import MaterializeError, meta_build

    with meta_build():
        m = _model(spec)
    try:
        progress = not as_json and console.is_terminal
        index = write_checkpoint(
            m, policy, seed, out, dtype=dtype, max_shard_bytes=max_bytes, progress=progress,
            strict=strict,
        )  # fmt: skip
    except (PolicyError, UnmatchedParametersError, MaterializeError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo((index.parent / "init_report.json").read_text())
        return
    data = json.loads(index.read_text())
    files = sorted(set(data["weight_map"].values()))
    size = data["metadata"]["total_size"]
    console.print(f"wrote {len(data['weight_map'])} tensors ({size / 2**20:.1f} MiB) in "
                  f"{len(files)} file(s) to {index.parent}, index {index.name}, report "
                  "init_report.md")  # fmt: skip
