"""regenerate: integer indices drop the dim on both random paths."""

from __future__ import annotations

import torch
from torch import nn

import initlab
from initlab import Policy, Rule
from initlab.execute import regenerate


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


def test_regenerate_int_index_drops_the_dim_on_both_paths() -> None:
    lstm = nn.LSTM(4, 3)
    pol = Policy(rules=(
        Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
        Rule("normal"),
    ))  # fmt: skip
    report = initlab.plan(lstm, pol)
    plain, blocked = report["weight_ih_l0"], report["bias_ih_l0"]
    assert blocked.block_overrides and not plain.block_overrides
    full_w, full_b = regenerate(plain), regenerate(blocked)
    assert regenerate(plain, (2,)).shape == (4,)
    assert torch.equal(regenerate(plain, (2,)), full_w[2])
    assert torch.equal(regenerate(plain, (slice(1, 3), -1)), full_w[1:3, -1])
    assert torch.equal(regenerate(plain, (slice(1, 3),)), full_w[1:3])
    assert regenerate(blocked, (4,)).shape == ()
    assert torch.equal(regenerate(blocked, (4,)), full_b[4])
    assert torch.equal(regenerate(blocked, (slice(2, 7),)), full_b[2:7])


# -- 8. policy files: -0.0 survives, parameter value errors carry their path ----------------------
