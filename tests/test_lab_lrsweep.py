"""The learning-rate sweep: optimum detection, the transfer verdict, the stacked trainer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from initlab.lab.data import load_dataset
from initlab.lab.lrsweep import (
    Cell,
    LRSweep,
    _digits_group,
    lr_sweep,
    optimal_log2_lr,
    parse_log2_range,
    transfer,
)
from initlab.lab.width import WidthError, build_member, group_optimizer, prepare

NAN = float("nan")


def test_optimum_is_the_lowest_finite_loss():
    assert optimal_log2_lr({-8: 1.0, -7: 0.4, -6: 0.2, -5: NAN, -4: float("inf")}) == -6
    assert optimal_log2_lr({-8: NAN, -7: NAN}) is None
    assert optimal_log2_lr({-8: 0.5, -7: 0.5}) == -8  # a tie goes to the smaller rate


def test_transfer_verdict_on_hand_made_optima():
    assert transfer({64: -7, 128: -7, 256: -8, 512: -7}) == {
        "holds": True, "spread": 1, "shift": 0, "widths": 4,
    }  # fmt: skip
    sp = transfer({64: -6, 128: -7, 256: -8, 512: -8, 1024: -9})
    assert sp == {"holds": False, "spread": 3, "shift": -3, "widths": 5}
    assert not transfer({64: -7, 128: -7, 256: -7})["holds"]  # three widths are too few
    assert not transfer({64: -7, 128: -7, 256: None, 512: -7})["holds"]  # one diverged
    assert transfer({64: None})["spread"] is None


def test_sweep_table_averages_seeds_and_marks_edges():
    cells = [
        Cell("sp", 8, k, s, loss)
        for k, s, loss in [
            (-3, 0, 1.0),
            (-3, 1, 3.0),
            (-2, 0, 1.0),
            (-2, 1, 1.0),
            (-1, 0, NAN),
            (-1, 1, 0.1),
        ]
    ] + [Cell("mup", 8, k, 0, 1.0 + k) for k in (-3, -2, -1)]
    s = LRSweep("t", "m", [8], [-3, -2, -1], [0, 1], 1, cells)
    assert s.losses("sp")[8][-3] == pytest.approx(2.0)
    assert math.isnan(s.losses("sp")[8][-1])  # one seed diverged: the point is diverged
    assert s.optima("sp") == {8: -2} and s.optima("mup") == {8: -3}
    v = s.verdict()
    assert v["sp"]["at_edge"] == [] and v["mup"]["at_edge"] == [8]
    assert s.to_dict()["losses"]["sp"]["8"]["-1"] is None


def test_parse_log2_range():
    assert parse_log2_range("-14:-12") == [-14, -13, -12]
    for bad in ("-4:-14", "1e-3:1e-2", "-4", "a:b"):
        with pytest.raises(WidthError, match="LOW:HIGH exponents of 2"):
            parse_log2_range(bad)


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_stacked_runs_equal_torch_adam_run_by_run(param):
    """Each stacked run with its own learning rate follows torch.optim.Adam on its own."""
    template, runs, steps, batch = "mlp:widths={width}-{width}", [(-7, 0), (-4, 1)], 4, 16
    stacked = _digits_group(template, 32, param, runs, 16, steps, batch, "adam", {})
    data = load_dataset("digits")
    shape, classes = data.input_shape, data.num_classes
    base = build_member(template, 16, shape, classes, meta=True)
    for (k, seed), got in zip(runs, stacked, strict=True):
        model = build_member(template, 32, shape, classes, seed=seed)
        prep = prepare(model, param, lr=2.0**k, optimizer="adam", base=base, seed=seed)
        opt = group_optimizer("adam", prep.param_groups)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(0, data.x_train.shape[0], (batch,), generator=g)
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            want = F.cross_entropy(model(data.x_train), data.y_train).item()
        prep.remove()
        assert got == pytest.approx(want, rel=1e-4), (param, k)


def test_lr_sweep_resumes_and_reports_cells():
    new: list[Cell] = []
    s = lr_sweep("digits", widths=[8, 16], log2_lrs=[-6, -5], seeds=[0], steps=2,
                 parametrisations=["sp"], on_cell=new.append)  # fmt: skip
    assert len(new) == 4 and {c.width for c in new} == {8, 16}
    again: list[Cell] = []
    s2 = lr_sweep("digits", widths=[8, 16], log2_lrs=[-6, -5], seeds=[0], steps=2,
                  parametrisations=["sp"], done=new[:3], on_cell=again.append)  # fmt: skip
    assert len(again) == 1 and again[0].key == new[3].key  # only the missing run trains
    assert again[0].loss == pytest.approx(new[3].loss, rel=1e-5)
    assert s2.optima("sp") == s.optima("sp")


def test_lr_sweep_rejects_bad_settings():
    with pytest.raises(WidthError, match="unknown task 'nosuch'; tasks: digits, text"):
        lr_sweep("nosuch")
    with pytest.raises(WidthError, match="two different positive widths"):
        lr_sweep("digits", widths=[8])
    with pytest.raises(WidthError, match="two learning rates"):
        lr_sweep("digits", widths=[8, 16], log2_lrs=[-5])


def test_text_task_trains_gpt2_on_stdlib_text():
    s = lr_sweep("text", widths=[16, 32], log2_lrs=[-20, -6], seeds=[0], steps=3)
    losses = s.losses("mup")
    assert set(losses) == {16, 32} and s.parametrisations == ["sp", "mup"]
    # 3 steps at 2^-20 leave the byte model at its init loss, ln(256) = 5.55 give or take;
    # 2^-6 has learned something
    for p in ("sp", "mup"):
        for row in s.losses(p).values():
            assert abs(row[-20] - 5.55) < 0.5 and row[-6] < row[-20] - 0.3
    assert s.notes["mup"] == []
