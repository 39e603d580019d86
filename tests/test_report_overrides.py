"""Block overrides read as such in the report, and target/achieved std describe the same
elements (the blocks the row's own scheme filled)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import initlab
from initlab import Policy, Rule

FORGET = Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f")


def _report(*rules: Rule) -> initlab.InitReport:
    return initlab.initialize(nn.LSTM(8, 16), Policy(rules=rules), 0)


def test_forget_gate_override_reads_as_an_override_with_consistent_stds() -> None:
    report = _report(FORGET, Rule("zeros", param="*bias*"), Rule("orthogonal"))
    row = report["bias_ih_l0"]
    assert row.std_blocks == ("i", "g", "o")
    assert row.target_std == 0 and row.achieved_std == 0  # not 0.43: f = 1 is left out
    md = report.to_markdown()
    line = next(x for x in md.splitlines() if x.startswith("| bias_ih_l0 "))
    assert "zeros(); block f = 1 (override, rule[0])" in line
    assert line.endswith("| 0 (i,g,o) | 0 (i,g,o) |")
    assert "bias_ih_l0" in str(report)  # the rich table renders the same cells


def test_achieved_std_of_packed_rows_leaves_the_override_blocks_out() -> None:
    lstm = nn.LSTM(8, 16)
    pol = Policy(rules=(FORGET, Rule("normal", param="*bias*"), Rule("orthogonal")))
    report = initlab.initialize(lstm, pol, 0)
    row = report["bias_hh_l0"]
    b = lstm.bias_hh_l0.detach()
    expected = torch.cat([b[:16], b[32:]]).std().item()  # blocks i, g, o of 4 x 16
    assert row.achieved_std == pytest.approx(expected, rel=1e-6)
    assert row.target_std == 1.0
    assert abs(row.achieved_std - row.target_std) < 0.25  # 48 normal draws: within ~3 sigma
    assert torch.equal(b[16:32], torch.ones(16))


def test_non_constant_override_shows_its_scheme_and_json_names_the_std_blocks() -> None:
    report = _report(Rule("orthogonal", param="weight_hh*", block="i"), Rule("xavier_normal"))
    row = report["weight_hh_l0"]
    cell = report._cells(row)[4]
    assert cell == "xavier_normal(gain=1.0); block i: orthogonal(gain=1.0) (override, rule[0])"
    data = json.loads(report.to_json())
    by_name = {p["name"]: p for p in data["parameters"]}
    assert by_name["weight_hh_l0"]["std_blocks"] == ["f", "g", "o"]
    assert by_name["weight_ih_l0"]["std_blocks"] is None  # no override: the whole parameter


def test_rows_with_only_block_rules_have_no_std_to_compare() -> None:
    rules = [Rule({"name": "constant", "val": float(k)}, param="bias_ih*", block=b)
             for k, b in enumerate("ifgo")]  # fmt: skip
    report = _report(*rules, Rule("zeros", param="*_hh_*"), Rule("zeros", param="weight_ih*"))
    row = report["bias_ih_l0"]
    assert row.scheme is None and row.std_blocks == ()
    assert row.target_std is None and row.achieved_std is None
    cells = report._cells(row)
    assert cells[4].startswith("block i = 0 (override, rule[0]); block f = 1 (override")
    assert cells[-2:] == ["-", "-"]


def test_a_scheme_whose_blocks_are_all_overridden_has_no_std() -> None:
    rules = [Rule({"name": "constant", "val": 0.5}, param="bias_ih*", block=b) for b in "ifgo"]
    report = _report(*rules, Rule("zeros"))
    row = report["bias_ih_l0"]
    assert row.scheme is not None and row.std_blocks == ()
    assert row.target_std is None and row.achieved_std is None
    assert report._cells(row)[-2:] == ["-", "-"]
