"""``initlab mup MODEL --base BASE``: the muP table of a model against a base model.

Both are model specs (:func:`initlab.build_model`: ``mlp:widths=256``, ``hf:gpt2?n_embd=256``,
``pkg.mod:factory``, ``file.py:factory``), built with :func:`initlab.meta_build` (shapes only).
``--base`` (and ``--delta``, a third width that labels a model at the base's own width) may
instead be a ``dim=size`` list (``n_embd=64``, ``width=64``) for models with a config
(transformers). Prints, per parameter, the kind, width_mult, init std, the Adam and SGD
LR multipliers and the readout multiplier, then the attention scales and what is not full muP.
"""

from __future__ import annotations

import re

import click
from rich.table import Table
from torch import nn

from ..execute import meta_build
from ..mup import MupError, mup
from ..specs import ModelError, build_model
from ._common import console, print_json
from .options import json_option

_DIMS = re.compile(r"^\w+=\d+(,\w+=\d+)*$")


def _build(spec: str, hint: str) -> nn.Module:
    try:
        with meta_build():
            return build_model(spec)
    except ModelError as e:
        raise click.BadParameter(str(e), param_hint=hint) from None


def _base(spec: str, hint: str) -> object:
    """A model spec built on meta, or a ``dim=size[,dim=size]`` map."""
    if _DIMS.match(spec) and ":" not in spec:
        return {k: int(v) for k, v in (p.split("=") for p in spec.split(","))}
    return _build(spec, hint)


@click.command("mup")
@click.argument("model_spec")
@click.option(
    "--base",
    "base_spec",
    required=True,
    help="The base (small) model: a model spec, or dim=size[,dim=size] (e.g. width=64).",
)
@click.option(
    "--delta",
    "delta_spec",
    default=None,
    help="A model at a third width (spec or dim=size), to label a model at the base's width.",
)
@click.option("--init", "init", default=None, help="The base init preset (default: the family's).")
@click.option("--depth", type=click.Choice(["sqrt", "complete"]), default=None,
              help="Depth scaling: Depth-muP (1/sqrt(L)) or CompleteP (1/L).")  # fmt: skip
@json_option("the muP parametrisation")
def mup_cmd(
    model_spec: str,
    base_spec: str,
    delta_spec: str | None,
    init: str | None,
    depth: str | None,
    as_json: bool,
) -> None:
    """The muP table of a model against a base: kinds, stds, LRs.

    For example: initlab mup "hf:gpt2?n_layer=2&n_embd=256" --base "hf:gpt2?n_layer=2&n_embd=64"
    """
    model = _build(model_spec, "MODEL_SPEC")
    base = _base(base_spec, "--base")
    delta = None if delta_spec is None else _base(delta_spec, "--delta")
    try:
        m = mup(model, base, init=init, depth=depth, delta=delta)
    except MupError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        print_json(m.to_dict())
        return
    table = Table(title=f"muP of {model_spec} (base {base_spec}, init {m.init})")
    for col in ("parameter", "kind", "width_mult", "init std", "Adam LR", "SGD LR", "readout"):
        table.add_column(col)
    for p in m.params.values():
        readout = ", ".join(f"{m.readouts[r]:.4g}" for r in p.readouts if r in m.readouts)
        std = "-" if p.init_std is None else f"{p.init_std:.4g}"
        table.add_row(
            p.name, p.kind, f"{p.width_mult:.4g}", std, f"{p.lr_mult_adam:.4g}",
            f"{p.lr_mult_sgd:.4g}", readout or "-",
        )  # fmt: skip
    console.print(table)
    for line in m.table().splitlines()[len(m.params) + 1 :]:
        console.print(line, highlight=False, markup=False)
