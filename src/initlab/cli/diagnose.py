"""``initlab diagnose``: signal propagation at init for several schemes on one network.

The model is any model spec (:func:`initlab.build_model`). Its batch is the data set's
examples, except for a model that says what it takes (:mod:`initlab.sources.inputs`: random
token ids of an ``hf:`` language model's vocabulary, with the next-token cross-entropy for an
LM head, a fixed random readout for other ``hf:`` models; images of an ``hf:`` vision model's
or a timm model's input size).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import torch
from rich.console import Console

from ..diagnostics import compare_schemes, lsuv_, plot_histograms, plot_propagation
from ..execute import initialize
from ..lab.data import load_dataset
from ..lab.entries import Entry, resolve_entry
from ..sources.inputs import example_inputs, example_loss
from ..specs import build_model
from ._common import console, default_out_dir
from .options import (
    Command,
    check_out_dir,
    check_out_file,
    data_option,
    deprecated_alias,
    json_option,
    json_out_option,
    model_option,
    out_option,
    policy_option,
)

DEFAULT_ENTRIES = ("xavier", "kaiming", "lsuv")


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("diagnose", cls=Command)
@model_option(
    default="deep:depth=30,width=256,activation=relu",
    show_default=True,
    help="mlp[:widths=256-128,activation=relu], cnn[:batchnorm=true], "
    "deep[:depth=30,activation=tanh], resmlp, pkg.module:factory / file.py:factory, or a "
    "library model: 'hf:gpt2?n_layer=2&n_embd=64' (fed random token ids or images from its "
    "config), timm:NAME, torchvision:NAME.",
)
@data_option(default="digits", show_default=True)
@deprecated_alias("--dataset", "data", "--data")
@policy_option(
    multiple=True,
    default=DEFAULT_ENTRIES,
    show_default=True,
    help="Entries (schemes, presets, policy files, as compare takes them) and 'lsuv'.",
)
@deprecated_alias("--schemes", "policy", "--policy", multiple=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
    help="Examples in the diagnosed batch.",
)  # fmt: skip
@deprecated_alias("--batch", "batch_size", "--batch-size", type=click.IntRange(min=1))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@out_option(
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the plots (default: a new folder under ./initlab-out).",
)
@json_option("the per-scheme, per-layer records (instead of the table)")
@json_out_option("the per-scheme, per-layer records")
@click.option("--all-layers", is_flag=True, help="List every recorded call, not only weights.")
def diagnose_cmd(model: str, data: str, policy: tuple[str, ...], batch_size: int, seed: int,
                 out: str | None, as_json: bool, json_out: str | None,
                 all_layers: bool) -> None:  # fmt: skip
    """Activation/gradient propagation at init by scheme.

    One column per scheme: activation and gradient statistics per layer, plots, records.
    """
    folder = check_out_dir(out) if out else default_out_dir("diagnose")
    json_path = check_out_file(json_out) if json_out else None
    dataset = load_dataset(data, seed=seed)
    probe = build_model(model, dataset.input_shape, dataset.num_classes)  # fail early
    entries = [resolve_entry(spec) for spec in _split(policy) or DEFAULT_ENTRIES]
    own = example_inputs(probe, batch_size, seed)
    loss_fn = None
    if own is not None:  # the model's own inputs (token ids, images), its own loss
        x = own
        y, loss_fn = example_loss(probe, own, seed)
    else:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(dataset.x_train.shape[0], generator=g)[:batch_size]
        x, y = dataset.x_train[idx], dataset.y_train[idx]
        try:  # one forward before the comparison: a model that takes other inputs says so here
            with torch.no_grad():
                probe.eval()(x[:2].clone())
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise click.UsageError(
                f"model {model!r} does not take the examples of data set {data!r} (shape "
                f"{tuple(x.shape[1:])}): {why}; choose a data set it takes with -d, or diagnose "
                "it from Python with your own batch: initlab.diagnose(model, inputs)"
            ) from None

    # Progress on stderr, only for a person at a terminal (FORCE_COLOR=1 forces it): stdout
    # stays the table or pure JSON.
    status = Console(stderr=True, highlight=False)
    show = status.is_terminal and not as_json

    def init_for(i: int, entry: Entry) -> Callable[[torch.nn.Module], None]:
        def init(m: torch.nn.Module) -> None:
            if show:
                status.print(f"[dim]initlab: diagnosing {entry.label} ({i}/{len(entries)})[/dim]")
            initialize(m, entry.policy, seed)
            if entry.data_init == "lsuv":  # the explicit data phase, on the diagnosed batch
                lsuv_(m, x, orthonormal_preinit=False)

        return init

    def factory() -> torch.nn.Module:
        return build_model(model, dataset.input_shape, dataset.num_classes)

    inits = {e.label: init_for(i, e) for i, e in enumerate(entries, 1)}
    cmp = compare_schemes(factory, inits, x, y, loss_fn, seed=seed)
    if show:
        status.print("[dim]initlab: plotting[/dim]")
    folder.mkdir(parents=True, exist_ok=True)
    p1 = plot_propagation(cmp, folder / "propagation.png")
    p2 = plot_histograms(cmp, folder / "histograms.png")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        cmp.to_json(json_path)
    if as_json:
        click.echo(json.dumps(cmp.to_dict(), indent=2, default=str))
        return
    console.print(cmp.table(layers="all" if all_layers else "weights"))
    console.print(f"plots: {p1}, {p2}" + (f"; records: {json_path}" if json_path else ""))
