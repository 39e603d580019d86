"""muP's param groups with torch's own optimizers (fused too), and how weight decay scales."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.mup import MupError


def _net(w: int) -> nn.Module:
    return nn.Sequential(nn.Linear(6, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 3))


@pytest.fixture
def pair() -> tuple[nn.Module, initlab.Mup]:
    torch.manual_seed(0)
    model = _net(128)
    return model, initlab.mup(model, _net(32))


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.optim.Adam(g),
        lambda g: torch.optim.AdamW(g),
        lambda g: torch.optim.AdamW(g, fused=True),
        lambda g: torch.optim.Adam(g, foreach=True),
        lambda g: torch.optim.SGD(g, momentum=0.9),
        lambda g: torch.optim.SGD(g, fused=True),
    ],
    ids=["adam", "adamw", "adamw-fused", "adam-foreach", "sgd", "sgd-fused"],
)
def test_torch_optimizers_take_the_groups_and_keep_their_keys(pair, make):
    model, m = pair
    opt = make(initlab.mup_param_groups(model, m, lr=0.01, weight_decay=0.01))
    model(torch.randn(4, 6)).square().mean().backward()
    opt.step()
    kinds = {g["name"]: (g["kind"], g["lr_mult"], g["lr"]) for g in opt.param_groups}
    assert kinds == {
        "input x1": ("input", 1.0, 0.01),
        "vector x1": ("vector", 1.0, 0.01),
        "hidden x0.25": ("hidden", 0.25, 0.0025),
        "output x1": ("output", 1.0, 0.01),
    }
    assert sum(len(g["params"]) for g in opt.param_groups) == 6


@pytest.mark.parametrize(("decay", "per_step"), [("independent", "base"), ("coupled", "scaled")])
def test_decoupled_decay_per_step(pair, decay, per_step):
    """AdamW with zero gradients only decays: p <- p (1 - lr_g wd_g). "independent" keeps
    lr_g wd_g = lr wd (the base's) for every group; "coupled" scales it with the LR multiplier."""
    model, m = pair
    lr, wd = 0.01, 0.5
    groups = initlab.mup_param_groups(model, m, lr=lr, weight_decay=wd, decay=decay)
    opt = torch.optim.AdamW(groups)
    before = {id(p): p.detach().clone() for p in model.parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for g in groups:
        want = lr * wd if per_step == "base" else lr * g["lr_mult"] * wd
        for p in g["params"]:
            torch.testing.assert_close(p.detach(), before[id(p)] * (1 - want), rtol=0, atol=1e-7)


def test_sgd_rule_and_default_optimizer(pair):
    model, _ = pair
    m = initlab.mup(model, _net(32), optimizer="sgd")
    groups = initlab.mup_param_groups(model, m, lr=0.1)
    assert {g["name"]: g["lr"] for g in groups} == {
        "input x4": 0.4, "vector x4": 0.4, "hidden x1": 0.1, "output x4": 0.4, "vector x1": 0.1
    }  # fmt: skip
    adam = initlab.mup_param_groups(model, m, lr=0.1, optimizer="adam")
    assert [g["name"] for g in adam] == ["input x1", "vector x1", "hidden x0.25", "output x1"]


def test_tied_parameters_appear_once():
    class Tied(nn.Module):
        def __init__(self, d: int) -> None:
            super().__init__()
            self.emb = nn.Embedding(11, d)
            self.mid = nn.Linear(d, d)
            self.head = nn.Linear(d, 11, bias=False)
            self.head.weight = self.emb.weight

    model = Tied(64)
    m = initlab.mup(model, Tied(16))
    groups = initlab.mup_param_groups(model, m, lr=1.0)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 3
    torch.optim.AdamW(groups)  # torch refuses a parameter in two groups


def test_bad_input_is_a_clear_error(pair):
    model, m = pair
    with pytest.raises(MupError, match="not in the Mup"):
        initlab.mup_param_groups(nn.ModuleDict({"x": nn.Linear(2, 2)}), m, lr=0.1)
    with pytest.raises(MupError, match=r"has shape \(256, 6\) but the Mup was made for"):
        initlab.mup_param_groups(_net(256), m, lr=0.1)
    with pytest.raises(MupError, match="decay must be one of independent, coupled"):
        initlab.mup_param_groups(model, m, lr=0.1, decay="l2")
    with pytest.raises(MupError, match="optimizer must be one of"):
        initlab.mup_param_groups(model, m, lr=0.1, optimizer="lion")
    with pytest.raises(MupError, match="lr must be positive"):
        initlab.mup_param_groups(model, m, lr=0.0)
    with pytest.raises(MupError, match="weight_decay must be >= 0"):
        initlab.mup_param_groups(model, m, lr=0.1, weight_decay=-1.0)
