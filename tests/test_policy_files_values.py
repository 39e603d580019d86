"""Scheme values in policy files: -0.0 survives, errors carry the key path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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


@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_negative_zero_constant_survives_file_round_trip(fmt: str) -> None:
    from initlab.policy.files import dumps_policy, loads_policy

    pol = Policy(rules=(Rule({"name": "constant", "val": -0.0}),))
    back = loads_policy(dumps_policy(pol, fmt), fmt)
    val = back.rules[0].scheme.params()["val"]
    assert val == 0.0 and str(val) == "-0.0"
    plain = loads_policy(dumps_policy(Policy(rules=(Rule("zeros"),)), fmt), fmt)
    assert plain.rules[0].scheme.name == "zeros"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        # "x" alone would be an expression of a quantity x (checked when planned); "x +" is not
        ({"rules": [{"scheme": "zeros"}, {"scheme": "normal", "params": {"std": "x +"}}]},
         "rules[1].params.std"),
        ({"rules": [{"scheme": {"name": "normal", "std": -1}}]}, "rules[0].scheme.std"),
        ({"rules": [{"scheme": {"name": "kaiming_normal", "mode": "x"}}]},
         "rules[0].scheme.mode"),
        ({"unmatched": "default", "default": {"name": "normal", "std": -1}}, "default.std"),
        # no single field to blame: the scheme itself
        ({"rules": [{"scheme": {"name": "trunc_normal", "a": 3, "b": 1}}]}, "rules[0].scheme"),
    ],
)  # fmt: skip
def test_scheme_value_errors_carry_the_key_path(data: dict, path: str) -> None:  # type: ignore[type-arg]
    from initlab.policy import PolicyError
    from initlab.specs import load_policy

    with pytest.raises(PolicyError) as ei:
        load_policy(data)
    assert ei.value.path == path
