"""initlab.lab.stats: intervals inside each metric's range, zero-width intervals, epoch ranks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initlab.lab.report_pages import format_cell
from initlab.lab.stats import METRIC_RANGES, summarise, summarise_values

ACC = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=12)
LOSS = st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(values=ACC, n_val=st.integers(1, 100_000))
def test_accuracy_intervals_never_leave_0_1_and_hold_the_mean(values, n_val) -> None:
    s = summarise_values(values, METRIC_RANGES["val_acc"], 1.0 / n_val)
    assert 0.0 <= s.mean <= 1.0
    if s.ci is not None:
        lo, hi = s.ci
        assert 0.0 <= lo <= s.mean <= hi <= 1.0


@settings(max_examples=300, deadline=None)
@given(values=LOSS)
def test_loss_intervals_never_go_below_zero_and_hold_the_mean(values) -> None:
    s = summarise_values(values, METRIC_RANGES["val_loss"])
    if s.ci is not None:
        lo, hi = s.ci
        assert 0.0 <= lo <= s.mean * (1 + 1e-12) and s.mean <= hi * (1 + 1e-12)
        assert math.isfinite(hi) or s.mean > 1e300


def test_the_reported_impossible_intervals_are_now_in_range() -> None:
    # 93.8 ± 1.4 over 2 seeds gave [81.4, 106.1]: now a logit-scale t interval, marked
    s = summarise_values([0.928, 0.948], (0.0, 1.0), 1 / 360)
    assert s.method == "logit-t" and s.ci[1] < 1.0 and s.ci[0] < 0.928
    assert format_cell("val_acc", s).endswith("]*")
    # the uniform demo's train loss [-51.5, 266]: a log-scale interval, above 0
    loss = summarise_values([2.0, 40.0, 210.0], (0.0, math.inf))
    assert loss.method == "log-t" and loss.ci[0] > 0 and loss.ci[1] > 210
    # an interval that fits stays the plain t interval
    plain = summarise_values([0.80, 0.82, 0.84], (0.0, 1.0))
    half = 4.303 * 0.02 / math.sqrt(3)
    assert plain.method == "t" and plain.ci == pytest.approx((0.82 - half, 0.82 + half))


def test_zero_width_intervals_say_n_and_why() -> None:
    s = summarise_values([0.939, 0.939, 0.939], (0.0, 1.0))
    assert s.identical and s.ci == (0.939, 0.939)
    assert format_cell("val_acc", s) == "93.9 (3 seeds identical)"
    assert s.to_dict()["identical"] is True
    f32 = summarise_values([0.1, 0.10000000149011612, 0.1], (0.0, 1.0))  # float32 rounding
    assert f32.identical
    one = summarise_values([0.5], (0.0, 1.0))
    assert not one.identical and format_cell("val_acc", one) == "50.0 (1 seed)"


def test_each_epoch_is_ranked_at_that_epoch(lab_run) -> None:
    # "late" is behind after epoch 2 and ahead at the end; "early" the reverse
    runs = [lab_run("early", s, [0.8, 0.85, 0.86]) for s in range(3)]
    runs += [lab_run("late", s, [0.3, 0.6, 0.95]) for s in range(3)]
    stats = summarise(runs)
    by = {s.entry: s for s in stats}
    assert [s.entry for s in stats] == ["late", "early"]
    assert by["late"].ranks == {"early": 2, "final": 1} and by["late"].rank == 1
    assert by["early"].ranks == {"early": 1, "final": 2}
    assert by["late"].to_dict()["ranks"] == {"early": 2, "final": 1}


def test_a_narrow_interval_never_prints_as_a_point() -> None:
    s = summarise_values([2.3025, 2.3027, 2.3041], METRIC_RANGES["val_loss"])
    cell = format_cell("val_loss", s)
    lo, hi = cell[cell.index("[") + 1 : cell.index("]")].split(", ")
    assert lo != hi and cell.startswith("2.30 ± ")
    acc = format_cell("val_acc", summarise_values([0.1, 0.1003, 0.1], (0.0, 1.0)))
    assert acc == "10.0 ± 0.0 [10.0, 10.1]"
