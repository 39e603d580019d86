"""``initlab fans MODEL [PARAM]``: layer-aware fans next to torch's shape rule.

MODEL is a constructor expression over ``nn``/``torch`` (``"nn.LSTM(10, 20)"``) or any model
spec :func:`initlab.build_model` reads (``mlp``, ``pkg.mod:factory``, ``file.py:factory``,
``hf:...``/``timm:...`` once their sources are registered); a model spec is built with
:func:`initlab.meta_build` (parameters on meta: only shapes are read, no memory, no init).
"""

from __future__ import annotations

import click
from rich.table import Table
from torch import nn

from ..execute import meta_build
from ..layers import compute_fans
from ..specs import ModelError, build_model
from ._common import build_module, console, print_json
from .options import json_option


@click.command("fans")
@click.argument("module_expr")
@click.argument("param", required=False)
@json_option("the fans")
def fans_cmd(module_expr: str, param: str | None, as_json: bool) -> None:
    """Fans of a layer's parameters beside torch's rule.

    MODULE_EXPR is a constructor such as "nn.LSTM(10, 20)", or a model spec (mlp,
    pkg.mod:factory, file.py:factory, hf:gpt2?n_layer=2 once registered), built on meta.
    PARAM may be a dotted path (transformer.h.0.attn.c_attn.weight).

    For example: initlab fans "nn.LSTM(10, 20)" weight_hh_l0
    """
    module = _build(module_expr)
    names = [param] if param else [n for n, _ in module.named_parameters()]
    rows = []
    for name in names:
        try:
            fans = compute_fans(module, name)
        except (ValueError, TypeError, KeyError) as e:
            raise click.ClickException(str(e)) from None
        shape = tuple(module.get_parameter(name).shape)
        try:
            tf = compute_fans(module, name, convention="torch")
            torch_pair: tuple[int, int] | None = (tf.fan_in, tf.fan_out)
        except ValueError:
            torch_pair = None
        rows.append({"param": name, "shape": list(shape), "torch": torch_pair, **fans.to_dict()})
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"fans of {module_expr}")
    for col in (
        "parameter",
        "shape",
        "fan_in",
        "fan_out",
        "blocks",
        "rule",
        "torch rule (in, out)",
    ):
        table.add_column(col)
    for r in rows:
        blocks = (
            f"{','.join(b[0] for b in r['blocks'])} ({len(r['blocks'])} x {r['blocks'][0][2]})"
            if r["blocks"]
            else "-"
        )
        torch_pair = "n/a (1-D)" if r["torch"] is None else f"{r['torch'][0]}, {r['torch'][1]}"
        # a packed tensor's blocks split its outputs: per block, and for the whole tensor
        fan_out = (f"{r['fan_out']} per block ({r['fan_out'] * len(r['blocks'])} in all)"
                   if r["blocks"] else str(r["fan_out"]))  # fmt: skip
        table.add_row(
            r["param"], str(tuple(r["shape"])), str(r["fan_in"]), fan_out, blocks,
            r["rule"], torch_pair,
        )  # fmt: skip
    console.print(table)


def _build(expr: str) -> nn.Module:
    """A constructor expression over nn/torch, else a model spec built with meta_build."""
    if expr.startswith(("nn.", "torch.")):
        return build_module(expr)
    try:
        with meta_build():
            return build_model(expr)
    except ModelError as e:
        raise click.BadParameter(
            f"{e}. Or write a constructor call such as 'nn.Conv2d(16, 32, 3, groups=4)'",
            param_hint="MODULE_EXPR",
        ) from None
