"""initlab.lab.verdict: best, tied, worse and failed entries from constructed results."""

from __future__ import annotations

import math

import pytest

from initlab.lab.stats import t_two_sided_p
from initlab.lab.verdict import ALPHA, chance_margin, decide, holm


def test_t_p_values_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for t in (0.0, 0.3, 1.0, 2.0, 4.303, 12.7, 50.0):
        for df in (1, 2, 4, 9, 30, 120):
            assert t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9, abs=1e-14)
    assert t_two_sided_p(-2.0, 5) == t_two_sided_p(2.0, 5)
    assert t_two_sided_p(math.inf, 3) == 0.0


def test_holm_adjustment_is_step_down_and_monotone() -> None:
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.001]) == [0.5, 0.002]
    assert holm([0.4, 0.6]) == [0.8, 0.8]  # monotone: never below an earlier step
    assert holm([]) == []


def test_clearly_better_entry_makes_the_other_worse(lab_run) -> None:
    runs = [lab_run("good", s, 0.90 + 0.01 * s) for s in range(4)]
    runs += [lab_run("bad", s, 0.70 + 0.012 * s) for s in range(4)]
    v = decide(runs)
    assert v.best == "good" and v.worse == ["bad"] and v.tied == [] and v.failed == {}
    (test,) = v.tests
    assert test.n == 4 and test.diff == pytest.approx(0.197, abs=1e-9) and test.p_holm < ALPHA
    assert test.ci[0] < test.diff < test.ci[1]
    assert "Best: good (91.5%)" in v.text and "Worse: bad (-19.7 points" in v.text
    assert "400 validation examples, so one example is 0.25 points" in v.text


def test_entries_within_seed_noise_are_tied(lab_run) -> None:
    noise = [0.010, -0.012, 0.004]
    runs = [lab_run("a", s, 0.950 + noise[s]) for s in range(3)]
    runs += [lab_run("b", s, 0.948 - noise[s]) for s in range(3)]
    runs += [lab_run("c", s, 0.946 + noise[(s + 1) % 3]) for s in range(3)]
    v = decide(runs)
    assert v.best == "a" and set(v.tied) == {"b", "c"} and v.worse == []
    assert all(t.p_holm >= ALPHA for t in v.tests)
    assert "Statistically tied with it" in v.text and "not equal" in v.text


def test_holm_turns_a_marginal_gap_into_a_tie(lab_run) -> None:
    # five entries each ~p 0.03 unadjusted against the best: Holm keeps none of them worse
    runs = [lab_run("best", s, 0.90) for s in range(3)]
    for k in range(5):
        runs += [lab_run(f"e{k}", s, 0.90 - 0.02 - 0.01 * (s == k % 3)) for s in range(3)]
    v = decide(runs)
    raw = [t.p for t in v.tests]
    assert all(p < ALPHA for p in raw) and all(t.p_holm >= ALPHA for t in v.tests)
    assert v.worse == [] and len(v.tied) == 5


def test_a_gap_with_no_spread_is_certain_and_no_gap_is_a_tie(lab_run) -> None:
    runs = [lab_run("a", s, 0.90 + 0.01 * s) for s in range(3)]
    runs += [lab_run("b", s, 0.85 + 0.01 * s) for s in range(3)]  # exactly 5 points every seed
    runs += [lab_run("c", s, 0.90 + 0.01 * s) for s in range(3)]  # equal every seed
    v = decide(runs)
    by = {t.entry: t for t in v.tests}
    assert by["b"].p == 0.0 and "b" in v.worse
    assert by["c"].p == 1.0 and "c" in v.tied


def test_failures_at_chance_diverged_and_not_learning(lab_run) -> None:
    runs = [lab_run("good", s, 0.9) for s in range(3)]
    runs += [lab_run("chance", s, 0.11) for s in range(3)]
    runs += [lab_run("boom", s, 0.5, diverged=s == 1) for s in range(3)]
    runs += [lab_run("stuck", s, 0.4, loss_end=2.25) for s in range(3)]
    v = decide(runs)
    assert v.best == "good" and v.tied == [] and v.worse == []
    assert set(v.failed) == {"chance", "boom", "stuck"}
    assert v.failed["chance"].startswith("at chance (11.0%, chance 10.0%)")
    assert v.failed["boom"] == "diverged in 1 of 3 seeds"
    assert v.failed["stuck"].startswith("did not learn")
    assert "Failed: " in v.text and "boom: diverged in 1 of 3 seeds" in v.text


def test_chance_margin_is_two_points_or_two_binomial_errors() -> None:
    assert chance_margin(0.1, 10_000) == 0.02
    assert chance_margin(0.5, 100) == pytest.approx(0.1)
    assert chance_margin(0.1, None) == 0.02


def test_fewer_than_three_seeds_no_trustworthy_ranking(lab_run) -> None:
    runs = [lab_run("a", s, 0.9 + 0.01 * s) for s in range(2)]
    runs += [lab_run("b", s, 0.5) for s in range(2)]
    runs += [lab_run("z", s, 0.1) for s in range(2)]
    v = decide(runs)
    assert not v.trustworthy and v.tests == [] and v.worse == []
    assert v.best == "a" and v.tied == ["b"] and "z" in v.failed
    assert "With 2 seeds no ranking is trustworthy" in v.text
    one = decide([lab_run("a", 0, 0.9), lab_run("b", 0, 0.8)])
    assert "With 1 seed no ranking is trustworthy" in one.text


def test_every_entry_failed(lab_run) -> None:
    v = decide([lab_run("z", s, 0.1) for s in range(3)])
    assert v.best is None and "Every entry failed." in v.text
    assert v.to_dict()["best"] is None and v.to_dict()["failed"] == {"z": v.failed["z"]}


def test_verdict_without_recorded_data_facts(lab_run) -> None:
    runs = [lab_run("a", s, 0.9) for s in range(3)]
    for r in runs:
        r.config.pop("data")
    v = decide(runs)
    assert v.n_val is None and v.chance is None and "validation-set size not recorded" in v.text
    with pytest.raises(ValueError, match="alpha must lie in"):
        decide(runs, alpha=1.5)
