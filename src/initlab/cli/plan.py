"""``initlab plan MODEL -p P`` and ``initlab init MODEL -p P --seed N --out FILE_OR_DIR``.

MODEL is given as the argument or as ``-m/--model``, in any form :func:`initlab.build_model`
reads; the zoo's models are built for its default data set (digits).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import torch
from rich.console import Console

from ..execute import MaterializeError, initialize, meta_build, write_checkpoint
from ..plan import UnmatchedParametersError, plan
from ..policy import PolicyError
from ..specs import build_model
from ._common import console
from .options import (
    check_out_dir,
    check_out_file,
    json_option,
    model_option,
    out_option,
    policy_option,
)

_MODEL_HELP = (
    "MODEL (the argument or -m/--model) is a zoo model (mlp, cnn:batchnorm=true, deep, resmlp), "
    "'package.module:factory' or 'path/to/file.py:factory'."
)
_MODEL_OPT = "A model spec; the same as the MODEL argument."


def _model_spec(argument: str | None, option: str | None) -> str:
    """The model spec from the MODEL argument or ``-m/--model`` (exactly one of them)."""
    if argument and option and argument != option:
        raise click.UsageError(f"two models given ({argument!r} and -m {option!r}); give one")
    spec = argument or option
    if not spec:
        raise click.UsageError("no model given: pass MODEL or -m/--model (e.g. 'mlp')")
    return spec


def _model(spec: str) -> torch.nn.Module:
    return build_model(spec)


def _show(report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        click.echo(report.to_json())
    else:
        console.print(report.table())
        if report.unmatched:
            console.print(f"[yellow]{len(report.unmatched)} unmatched, left as they were[/yellow]")


@click.command("plan", epilog=_MODEL_HELP)
@click.argument("model_arg", metavar="[MODEL]", required=False)
@model_option(help=_MODEL_OPT)
@policy_option(required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--strict", is_flag=True, help="Fail if any parameter matches no rule.")
@json_option("the report")
def plan_cmd(model_arg: str | None, model: str | None, policy: str, seed: int, strict: bool,
             as_json: bool) -> None:  # fmt: skip
    """Show which rule would set every parameter of a model.

    Touches no tensor.
    """
    report = plan(_model(_model_spec(model_arg, model)), policy, seed, strict=strict)
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
@click.argument("model_arg", metavar="[MODEL]", required=False)
@model_option(help=_MODEL_OPT)
@policy_option(required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@out_option(
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
@click.option(
    "--buffers",
    "buffers_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A safetensors or .pt file of buffer name -> tensor, for buffers the model's own code "
    "does not make (names or globs, as materialize's buffers=).",
)
@click.option("--strict", is_flag=True, help="Fail if any parameter matches no rule.")
@json_option("the report")
@click.option("--force", is_flag=True, help="Replace an existing --out file or non-empty folder.")
def init_cmd(
    model_arg: str | None,
    model: str | None,
    policy: str,
    seed: int,
    out: str,
    dtype: str | None,
    max_shard_size: str,
    buffers_file: str | None,
    strict: bool,
    as_json: bool,
    force: bool,
) -> None:
    """Initialise a model by a policy and save it.

    To --out: a state_dict file, or a folder of safetensors shards. The output is written under
    a temporary name and renamed when complete; an existing file or non-empty folder is
    replaced only with --force.
    """
    model = _model_spec(model_arg, model)
    torch_dtype = None if dtype is None else _DTYPES[dtype]
    path = Path(out)
    if (path.is_file() or (path.is_dir() and any(path.iterdir()))) and not force:
        raise click.ClickException(
            f"--out {out!r} exists{' and is not empty' if path.is_dir() else ''}; "
            "pass --force to replace it"
        )
    # before any work: a folder (sharded safetensors) or a file (.pt) we can write
    if _is_folder(out):
        check_out_dir(out)
    else:
        check_out_file(out, "--out")
    buffers = _load_buffers(buffers_file)
    if _is_folder(out):
        _stream(model, policy, seed, out, torch_dtype, _size(max_shard_size), strict, as_json,
                force, buffers)  # fmt: skip
        return
    m = _model(model)
    if torch_dtype is not None:  # parameters only: buffers keep the dtype they are built with
        for p in m.parameters():
            if p.is_floating_point():
                p.data = p.data.to(torch_dtype)
    if buffers:
        _copy_buffers(m, buffers)
    # A status line on stderr for a person at a terminal (FORCE_COLOR=1 forces it): a big model
    # takes a while in place; stdout stays the table or pure JSON.
    status = Console(stderr=True, highlight=False)
    show = status.is_terminal and not as_json
    if show:
        n = sum(p.numel() for p in m.parameters())
        status.print(f"[dim]initlab: initializing {n:,} parameters in place[/dim]")
    try:
        report = initialize(m, policy, seed, strict=strict)
    except (PolicyError, UnmatchedParametersError) as e:
        raise click.ClickException(str(e)) from None
    if show:
        status.print(f"[dim]initlab: saving to {path}[/dim]")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(m.state_dict(), tmp)
        os.replace(tmp, path)  # a file cut short never sits under its final name
    finally:
        tmp.unlink(missing_ok=True)
    _show(report, as_json)
    if not as_json:
        console.print(f"saved {len(m.state_dict())} tensors to {path}")


def _load_buffers(path: str | None) -> dict[str, torch.Tensor] | None:
    """name -> tensor from a safetensors or torch.save file (``--buffers``)."""
    if path is None:
        return None
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            data = load_file(path)
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is one user error
        raise click.BadParameter(f"cannot read {path!r}: {e}", param_hint="--buffers") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise click.BadParameter(
            f"{path!r} must hold a dict of buffer name -> tensor", param_hint="--buffers"
        )
    return data


def _copy_buffers(model: torch.nn.Module, buffers: dict[str, torch.Tensor]) -> None:
    """Copy ``--buffers`` into an eagerly built model (all checked before any is written)."""
    own = dict(model.named_buffers())
    missing = sorted(set(buffers) - set(own))
    if missing:
        raise click.BadParameter(
            f"names no buffer of the model: {', '.join(missing)}", param_hint="--buffers"
        )
    for name, t in buffers.items():
        if tuple(t.shape) != tuple(own[name].shape):
            raise click.BadParameter(
                f"buffer {name!r} has shape {tuple(own[name].shape)}, the file gives "
                f"{tuple(t.shape)}",
                param_hint="--buffers",
            )
    with torch.no_grad():
        for name, t in buffers.items():
            own[name].copy_(t)


def _stream(
    spec: str,
    policy: str,
    seed: int,
    out: str,
    dtype: torch.dtype | None,
    max_bytes: int,
    strict: bool,
    as_json: bool,
    force: bool,
    buffers: dict[str, torch.Tensor] | None = None,
) -> None:
    with meta_build():  # parameters on meta; buffers made by the modules' own code
        m = _model(spec)
    try:
        progress = not as_json and console.is_terminal
        index = write_checkpoint(
            m, policy, seed, out, dtype=dtype, max_shard_bytes=max_bytes, progress=progress,
            strict=strict, overwrite=force, buffers=buffers,
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
