"""Tied parameters are filled once and stay tied, by any alias."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab import Policy, Rule


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.mid = nn.Linear(6, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight


@pytest.mark.parametrize("policy", ["kaiming", "gpt2:n_layers=1"])
def test_as_apply_fn_fills_tied_parameters_once(policy: str) -> None:
    a, b = Tied(), Tied()
    initlab.initialize(a, policy, 3)
    b.apply(initlab.as_apply_fn(policy, 3, root=b))
    _assert_same_state(_state(b), _state(a))
    assert b.head.weight is b.embed.weight


# -- 4. aliases in plan: exclusion by alias, same-module aliases ----------------------------------
def test_excluding_a_tied_parameter_by_its_alias() -> None:
    m = Tied()
    report = initlab.plan(m, "kaiming", exclude=["head.weight"])
    assert report["embed.weight"].status == "excluded"
    pol = Policy(rules=(Rule("normal"),), exclude=("head.*",))
    assert initlab.plan(m, pol)["embed.weight"].status == "excluded"
    before = m.embed.weight.detach().clone()
    initlab.initialize(m, "kaiming", exclude=["head.weight"])
    assert torch.equal(m.embed.weight, before)


class SameModuleAlias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.lin.w_alias = self.lin.weight


def test_same_module_alias_is_recorded() -> None:
    m = SameModuleAlias()
    report = initlab.plan(m, "kaiming")
    assert [r.qualname for r in report] == ["lin.weight", "lin.bias"]
    assert report["lin.weight"].aliases == ("lin.w_alias",)
    assert report["lin.w_alias"].qualname == "lin.weight"
    assert initlab.plan(m, "kaiming", exclude=["lin.w_alias"])["lin.weight"].status == "excluded"


# -- 5. buffer initialisers checked before anything is allocated ---------------------------------
