"""Every check that can fail runs before the first write: random source, dtype, fill errors naming
the parameter and rule.
"""

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


# -- 2. validation against the real parameters before any write --------------------------------
def _two_linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))


TORCH_TRUNC = Policy(rules=(
    Rule({"name": "trunc_normal", "method": "torch"}, name="1", param="weight", id="tn"),
    Rule("normal", id="rest"),
))  # fmt: skip


def test_source_check_runs_before_any_write(monkeypatch: pytest.MonkeyPatch) -> None:
    scheme = TORCH_TRUNC.rules[0].scheme
    calls: list[str] = []

    def check_source(self, kind: str) -> None:  # type: ignore[no-untyped-def]
        calls.append(kind)
        if kind == "keyed" and self.method == "torch":
            raise ValueError("trunc_normal: method='torch' needs rng='torch'")

    monkeypatch.setattr(type(scheme), "check_source", check_source, raising=False)
    model = _two_linear()
    before = _state(model)
    with pytest.raises(ValueError, match=r"'1.weight' \(rule tn\).*method='torch'"):
        initlab.initialize(model, TORCH_TRUNC)
    _assert_same_state(_state(model), before)
    assert calls == ["keyed"]
    initlab.initialize(model, TORCH_TRUNC, rng="torch")  # fine with torch's RNG
    assert calls[-1] == "torch"


def _trunc_has_check() -> bool:
    cls = type(TORCH_TRUNC.rules[0].scheme)
    own = getattr(cls, "check_source", None)
    return own is not None and own is not getattr(initlab.schemes.Scheme, "check_source", None)


@pytest.mark.skipif(not _trunc_has_check(), reason="trunc_normal.check_source not there yet")
def test_trunc_normal_torch_under_keyed_raises_before_writing() -> None:
    model = _two_linear()
    before = _state(model)
    with pytest.raises(ValueError, match=r"1\.weight"):
        initlab.initialize(model, TORCH_TRUNC)
    _assert_same_state(_state(model), before)


class IntParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.counts = nn.Parameter(torch.arange(6).reshape(2, 3), requires_grad=False)


def test_integer_parameter_with_random_scheme_raises_before_writing() -> None:
    torch.manual_seed(0)
    model = IntParam()
    before = _state(model)
    with pytest.raises(TypeError, match=r"'counts' \(rule rule\[0\], scheme normal\).*int64"):
        initlab.initialize(model, Policy(rules=(Rule("normal"),)))
    _assert_same_state(_state(model), before)
    # a deterministic scheme may fill it
    initlab.initialize(model, Policy(rules=(Rule("zeros"),)))
    assert torch.equal(model.counts, torch.zeros(2, 3, dtype=torch.int64))


def test_fill_errors_name_parameter_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    pol = Policy(rules=(Rule("normal", param="bias", id="b"), Rule("zeros", id="w")))
    scheme = pol.rules[0].scheme

    def boom(self, *a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaput")

    monkeypatch.setattr(type(scheme), "__call__", boom)
    with pytest.raises(RuntimeError, match=r"parameter '0.bias' \(rule b\): kaput") as ei:
        initlab.initialize(_two_linear(), pol)
    assert isinstance(ei.value.__cause__, RuntimeError)


# -- 3. as_apply_fn with tied parameters --------------------------------------------------------
