"""Packed parameters whose block rules cover only some blocks: reported, filled where covered,
refused where values would be missing.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab import Policy, Rule
from initlab.execute import MaterializeError, regenerate
from initlab.execute.checkpoint import CheckpointError, write_checkpoint
from initlab.plan import UnmatchedParametersError


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


# -- 1. partial block coverage -------------------------------------------------------------------
FORGET_ONLY = Policy(rules=(
    Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
    Rule("zeros", module="LSTM", param="weight_*"),
))  # fmt: skip


def test_partial_block_coverage_is_reported_and_strict_refuses() -> None:
    lstm = nn.LSTM(4, 3)
    report = initlab.plan(lstm, FORGET_ONLY)
    row = report["bias_ih_l0"]
    assert row.status == "partial"
    assert report.unmatched == ["bias_ih_l0", "bias_hh_l0"]
    assert report["weight_ih_l0"].status == "planned"
    before = _state(lstm)
    with pytest.raises(UnmatchedParametersError, match=r"bias_ih_l0 \(blocks i, g, o"):
        initlab.initialize(lstm, FORGET_ONLY, strict=True)
    _assert_same_state(_state(lstm), before)
    error_pol = Policy(rules=FORGET_ONLY.rules, unmatched="error")
    with pytest.raises(UnmatchedParametersError):
        initlab.plan(lstm, error_pol)


def test_partial_rows_fill_only_covered_blocks_in_place() -> None:
    lstm = nn.LSTM(4, 3)
    before = _state(lstm)
    report = initlab.initialize(lstm, FORGET_ONLY)
    assert report["bias_ih_l0"].status == "partial"
    b = lstm.bias_ih_l0.detach()
    assert torch.equal(b[3:6], torch.ones(3))  # f block
    assert torch.equal(b[:3], before["bias_ih_l0"][:3])
    assert torch.equal(b[6:], before["bias_ih_l0"][6:])


def test_partial_rows_refused_by_materialize_checkpoint_and_regenerate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        lstm = nn.LSTM(4, 3)
    with pytest.raises(MaterializeError, match=r"bias_ih_l0: block\(s\) i, g, o"):
        initlab.materialize(lstm, FORGET_ONLY)
    assert all(p.is_meta for p in lstm.parameters())
    with pytest.raises(CheckpointError, match=r"bias_hh_l0: block\(s\) i, g, o"):
        write_checkpoint(lstm, FORGET_ONLY, 0, tmp_path / "ck", progress=False)
    assert not (tmp_path / "ck").exists()
    row = initlab.plan(lstm, FORGET_ONLY)["bias_ih_l0"]
    with pytest.raises(ValueError, match=r"block\(s\) i, g, o have no rule"):
        regenerate(row)
