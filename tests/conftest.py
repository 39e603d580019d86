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


@pytest.fixture
def preset_args() -> dict[str, dict[str, object]]:
    """Every preset that builds without a model, with the arguments it then needs (hf_auto
    picks its family from a model and is tested on the zoo, tests/test_zoo_hf.py)."""
    t5 = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4}
    needs = {"gpt2": {"n_layers": 2}, "t5": t5}
    return {name: needs.get(name, {}) for name in list_presets() if name != "hf_auto"}
