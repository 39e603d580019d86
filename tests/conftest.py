"""Shared fixtures. Shared model architectures live in ``archs.py`` beside this file."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
from torch import nn

from initlab import list_presets

# Nothing may download at test time: Hugging Face libraries read these before any call.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


@pytest.fixture
def snapshot() -> Callable[[nn.Module], dict[str, torch.Tensor]]:
    """A copy of a module's state_dict, to compare after an operation that should not write."""
    return _snapshot


@pytest.fixture
def assert_unchanged() -> Callable[[nn.Module, dict[str, torch.Tensor]], None]:
    """Assert that a module's state equals a snapshot bit for bit, naming the first difference."""

    def check(m: nn.Module, before: dict[str, torch.Tensor]) -> None:
        after = _snapshot(m)
        assert after.keys() == before.keys()
        for k in after:
            assert torch.equal(after[k], before[k]), f"{k} changed"

    return check


def _lab_run(entry: str, seed: int, acc: float | list[float], *, n_val: int = 400,
             chance: float = 0.1, loss_end: float = 0.3, diverged: bool = False):  # fmt: skip
    from initlab.lab.results import RunResult

    accs = [chance, *acc] if isinstance(acc, list) else [chance, (chance + acc) / 2, acc]
    n = len(accs)
    train = [2.3] + [2.3 + (loss_end - 2.3) * k / (n - 1) for k in range(1, n)]
    metrics = {"train_loss": train, "val_loss": [v + 0.05 for v in train], "val_acc": accs}
    if diverged:
        metrics["train_loss"][-1] = metrics["val_loss"][-1] = float("nan")
    config = {"model": "mlp", "dataset": "synthetic", "optimizer": "sgd", "lr": 0.01,
              "batch_size": 32, "epochs": n - 1, "momentum": 0.9, "image": False,
              "limit": None, "data": {"n_val": n_val, "chance": chance, "n_train": 1000,
                                      "classes": 10}}  # fmt: skip
    return RunResult(f"{entry}-{seed}", entry, {"spec": entry}, seed, config, metrics,
                     wall_time=0.1, versions={"initlab": "0"},
                     status="diverged" if diverged else "ok")  # fmt: skip


@pytest.fixture
def lab_run() -> Callable[..., object]:
    """A made-up lab RunResult: ``lab_run(entry, seed, final_acc_or_curve, n_val=, chance=,
    loss_end=, diverged=)`` (accuracy at init = chance; losses fall linearly from 2.3)."""
    return _lab_run


@pytest.fixture
def preset_args() -> dict[str, dict[str, object]]:
    """Every preset that builds without a model, with the arguments it then needs (hf_auto
    picks its family from a model and is tested on the zoo, tests/test_zoo_hf.py)."""
    t5 = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4}
    needs = {"gpt2": {"n_layers": 2}, "t5": t5}
    auto = ("hf_auto", "timm_auto", "torchvision_auto")  # these need a model
    return {name: needs.get(name, {}) for name in list_presets() if name not in auto}
