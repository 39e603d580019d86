"""Duck-typed norms (any *RMSNorm/*LayerNorm with a 1-D weight) and rules that match by role."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.layers import find_layer


class MyRMSNorm(nn.Module):
    def __init__(self, n: int = 6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n))


class T5LayerNorm(nn.Module):
    def __init__(self, n: int = 6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n))
        self.bias = nn.Parameter(torch.empty(n))


class WideNorm(nn.Module):  # a 2-D weight: not a norm by duck typing
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(3, 3))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.rms = MyRMSNorm()
        self.ln = T5LayerNorm()


@pytest.mark.parametrize("cls", [MyRMSNorm, T5LayerNorm])
def test_duck_norms_get_norm_roles_and_elementwise_fans(cls: type) -> None:
    m = cls()
    f = initlab.compute_fans(m, "weight")
    assert (f.fan_in, f.fan_out, f.role, f.rule) == (1, 1, "norm_scale", "norm-duck")
    if cls is T5LayerNorm:
        assert initlab.compute_fans(m, "bias").role == "norm_shift"


def test_not_a_norm_without_a_1d_weight() -> None:
    assert find_layer(WideNorm()) is None
    assert find_layer(nn.LayerNorm(4)).rule == "norm-elementwise"  # the class entry wins


@pytest.mark.parametrize("preset", ["kaiming", "xavier", "lecun", "gpt2:n_layers=2"])
def test_presets_norm_rules_match_duck_norms(preset: str) -> None:
    m = Block()
    report = initlab.initialize(m, preset, seed=0, strict=True)
    assert torch.equal(m.rms.weight, torch.ones(6)) and torch.equal(m.ln.weight, torch.ones(6))
    assert torch.equal(m.ln.bias, torch.zeros(6))
    assert report["rms.weight"].rule_id == "norm-weight"


def test_rule_role_round_trip_and_bad_role() -> None:
    rule = initlab.Rule("ones", role="norm_scale")
    assert rule.to_dict() == {"scheme": "ones", "role": "norm_scale"}
    assert initlab.Rule.from_dict(rule.to_dict()) == rule
    with pytest.raises(initlab.PolicyError, match=r"role: unknown role 'norm'.*norm_scale"):
        initlab.Rule("ones", role="norm")


def test_torch_default_on_duck_norms_gives_ones_and_zeros() -> None:
    m = T5LayerNorm()
    initlab.initialize(m, "torch_default", seed=0, strict=True)
    assert torch.equal(m.weight, torch.ones(6)) and torch.equal(m.bias, torch.zeros(6))
