"""``initlab diagnose``: signal propagation at init for several schemes on one network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import torch

from ..diagnostics import lsuv_
from ._common import console, default_out_dir


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("diagnose")
@click.option(
    "--model",
    default="deep:depth=30,width=256,activation=relu",
    show_default=True,
    help="Built-in model spec (mlp, cnn, deep, resmlp) or 'module:factory'.",
)
@click.option(
    "--dataset",
    default="digits",
    show_default=True,
    help="digits, synthetic[:...], mnist:PATH, fashion-mnist:PATH, cifar10:PATH.",
)
@click.option(
    "--schemes",
    multiple=True,
    default=("xavier", "kaiming", "lsuv"),
    show_default=True,
    help="Entries (names, presets, policy files) and 'lsuv'.",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=256, show_default=True, help="Batch size."
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the plots (default: a new folder under ./initlab-out).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the per-scheme, per-layer records as JSON to this file.",
)
@click.option("--all-layers", is_flag=True, help="List every recorded call, not only weights.")
def diagnose_cmd(model: str, dataset: str, schemes: tuple[str, ...], batch: int, seed: int,
                 out: str | None, json_path: str | None, all_layers: bool) -> None:  # fmt: skip
    """Diagnose activation and gradient propagation at init, one column per scheme."""
    try:
        _diagnose(model, dataset, schemes, batch, seed, out, json_path, all_layers)
    except (OSError, RuntimeError, ValueError) as e:  # data, model, entry, policy, file errors
        raise click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def _diagnose(model: str, dataset: str, schemes: tuple[str, ...], batch: int, seed: int,
              out: str | None, json_path: str | None, all_layers: bool) -> None:  # fmt: skip
    from ..apply import initialize
    from ..diagnostics import compare_schemes, plot_histograms, plot_propagation
    from ..lab.data import load_dataset
    from ..lab.entries import Entry, resolve_entry
    from ..specs import build_model

    data = load_dataset(dataset, seed=seed)
    build_model(model, data.input_shape, data.num_classes)  # fail early on a bad spec
    entries = [resolve_entry(spec) for spec in _split(schemes) or ["xavier", "kaiming", "lsuv"]]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(data.x_train.shape[0], generator=g)[:batch]
    x, y = data.x_train[idx], data.y_train[idx]

    def init_for(entry: Entry) -> Callable[[torch.nn.Module], None]:
        def init(m: torch.nn.Module) -> None:
            initialize(m, entry.policy, seed)
            if entry.data_init == "lsuv":  # the explicit data phase, on the diagnosed batch
                lsuv_(m, x, orthonormal_preinit=False)

        return init

    def factory() -> torch.nn.Module:
        return build_model(model, data.input_shape, data.num_classes)

    cmp = compare_schemes(factory, {e.label: init_for(e) for e in entries}, x, y, seed=seed)
    console.print(cmp.table(layers="all" if all_layers else "weights"))
    folder = Path(out) if out else default_out_dir("diagnose")
    folder.mkdir(parents=True, exist_ok=True)
    p1 = plot_propagation(cmp, folder / "propagation.png")
    p2 = plot_histograms(cmp, folder / "histograms.png")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        cmp.to_json(json_path)
    console.print(f"plots: {p1}, {p2}" + (f"; records: {json_path}" if json_path else ""))
