"""No silently guessed fans: unknown layers are marked "guessed", warned about once, refused
under strict=True, and the message names the register_layer call that fixes it."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

import initlab
from initlab.layers import unregister_layer
from initlab.plan import GuessedFansError


class InOut(nn.Module):
    """A weight stored [in, out], as HF's Conv1D."""

    def __init__(self, n_in: int = 64, n_out: int = 256) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))


def _net() -> nn.Module:
    return nn.Sequential(InOut(), nn.Linear(256, 8))


def test_plan_marks_guessed_rows_and_warns_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.plan(_net(), "kaiming_normal")
    guessed_warnings = [w for w in caught if "guessed" in str(w.message)]
    assert len(guessed_warnings) == 1
    msg = str(guessed_warnings[0].message)
    assert "0.weight (InOut, 256/64)" in msg and "0.bias" in msg
    assert "initlab.register_layer('test_plan_guessed_fans.InOut'" in msg
    assert report.guessed == ["0.weight", "0.bias"]
    assert report["0.weight"].guessed and not report["1.weight"].guessed
    assert "256/64 (guessed)" in report.to_markdown()
    assert "Guessed fans" in report.to_markdown()
    data = json.loads(report.to_json())
    assert data["guessed"] == ["0.weight", "0.bias"]
    assert [p["guessed"] for p in data["parameters"]] == [True, True, False, False]
    assert "(guessed)" in str(report)


def test_strict_refuses_guessed_fans_and_the_suggested_call_fixes_it() -> None:
    with pytest.raises(GuessedFansError, match=r"strict: .*register_layer") as ei:
        initlab.plan(_net(), "kaiming_normal", strict=True)
    assert isinstance(ei.value, initlab.PolicyError)
    spec = initlab.LayerSpec(
        "inout",
        {
            "weight": initlab.ParamSpec("weight", initlab.Layout(in_axes=(0,), out_axes=(1,))),
            "bias": initlab.ParamSpec("bias", fans_of="weight"),
        },
    )
    initlab.register_layer(InOut, spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report = initlab.plan(_net(), "kaiming_normal", strict=True)
        row = report["0.weight"]
        assert (row.fans.fan_in, row.fans.fan_out) == (64, 256) and not row.guessed
        assert row.target_std == pytest.approx((2 / 64) ** 0.5)
    finally:
        unregister_layer(InOut)


def test_excluded_and_unmatched_rows_are_not_warned_about() -> None:
    policy = initlab.Policy(rules=(initlab.Rule("zeros", module="Linear"),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = initlab.plan(_net(), policy)
    assert report.unmatched == ["0.weight", "0.bias"] and report.guessed == ["0.weight", "0.bias"]
