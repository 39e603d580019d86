"""The coordinate check: recording, slope fitting and flags, and the measured SP/muP slopes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from initlab.lab.coordcheck import CoordCheck, CoordRecorder, coord_check, fit_slope
from initlab.lab.width import WidthError

WIDTHS = [64, 128, 256, 512, 1024]


@given(
    a=st.floats(-2.0, 2.0),
    c=st.floats(1e-3, 1e3),
    widths=st.lists(st.integers(1, 4096), min_size=2, max_size=6, unique=True),
)
@settings(max_examples=60, deadline=None)
def test_fit_slope_recovers_a_power_law_exactly(a, c, widths):
    values = [c * w**a for w in widths]
    assert fit_slope(widths, values) == pytest.approx(a, abs=1e-9)


def test_fit_slope_least_squares_and_bad_values():
    # log2 widths 6, 7, 8; log2 values 0, 2, 2: slope 1 by least squares (mean x 7, y 4/3)
    assert fit_slope([64, 128, 256], [1.0, 4.0, 4.0]) == pytest.approx(1.0)
    for bad in ([1.0, 0.0, 2.0], [1.0, float("nan"), 2.0], [1.0, -1.0, 2.0]):
        assert math.isnan(fit_slope([64, 128, 256], bad))
    assert math.isnan(fit_slope([64], [1.0]))
    with pytest.raises(ValueError, match="2 widths but 3 values"):
        fit_slope([1, 2], [1.0, 2.0, 3.0])


def test_recorder_takes_mean_abs_of_each_layer_with_parameters():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.5], [-1.0, 0.0]]))
        net[0].bias.zero_()
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(-10.0)
    rec = CoordRecorder(net)
    net(torch.tensor([[1.0, 1.0]]))  # fc: [-1, 1, -1] -> relu [0, 1, 0] -> head 1 - 10
    assert rec.take() == {"0": pytest.approx(1.0), "2": pytest.approx(9.0)}
    net(torch.tensor([[1.0, 1.0]]))
    net(torch.tensor([[2.0, 2.0]]))  # two calls since the last take: their mean
    assert rec.take()["0"] == pytest.approx(1.5)
    rec.remove()
    net(torch.tensor([[1.0, 1.0]]))
    assert rec.take() == {}


def test_slopes_and_flags_on_a_hand_made_table():
    coords = {
        "sp": {
            # step 0 flat, step 1 proportional to width: grows
            "head": [[1.0, 1.0 * w / 64] for w in (64, 128, 256)],
            "fc": [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]],
            "shrinks": [[1.0, (64 / w) ** 0.5] for w in (64, 128, 256)],
            "zero": [[0.0, 0.0]] * 3,
        }
    }
    cc = CoordCheck("m", [64, 128, 256], 1, "adam", 0.01, [0], 0.25, coords)
    slopes = cc.slopes("sp")
    assert slopes["head"] == [pytest.approx(0.0), pytest.approx(1.0)]
    assert slopes["shrinks"][1] == pytest.approx(-0.5)
    flagged = cc.flagged("sp")
    assert set(flagged) == {"head", "shrinks", "zero"}
    assert flagged["head"] == pytest.approx(1.0) and math.isnan(flagged["zero"])
    d = cc.to_dict()
    assert d["slopes"]["sp"]["zero"] == [None, None] and d["flagged"]["sp"]["zero"] is None


def test_coord_check_rejects_bad_settings():
    t = "mlp:widths={width}-{width}"
    with pytest.raises(WidthError, match="two different positive widths"):
        coord_check(t, [64, 64])
    with pytest.raises(WidthError, match="steps must be a positive integer"):
        coord_check(t, [8, 16], steps=0)
    with pytest.raises(WidthError, match="parametrisations must be among sp, mup"):
        coord_check(t, [8, 16], parametrisations=["ntk"])
    with pytest.raises(WidthError, match="optimizer must be one of"):
        coord_check(t, [8, 16], optimizer="lion")


@pytest.fixture(scope="module")
def mlp_adam() -> CoordCheck:
    """The default coordinate check of the lab's MLP under Adam (3 seeds; ~10 s)."""
    return coord_check("mlp:widths={width}-{width}", WIDTHS, steps=3, optimizer="adam",
                       seeds=[0, 1, 2])  # fmt: skip


def test_sp_readout_grows_with_width_under_adam_and_mup_is_flat(mlp_adam):
    # Measured (2-core CPU, torch 2.13, 3 seeds, lr 1e-2, widths 64..1024, last step): SP head
    # about +1.0 and fc2 about +0.6; muP every layer within 0.1 of 0. The thresholds leave a margin.
    sp, mu = mlp_adam.slopes("sp"), mlp_adam.slopes("mup")
    assert sp["head"][-1] > 0.7
    assert sp["fc2"][-1] > 0.4
    assert abs(sp["fc1"][-1]) < 0.15  # the input layer is stable under SP too
    for layer in ("fc1", "fc2", "head"):
        assert abs(mu[layer][-1]) < 0.2, (layer, mu[layer])
    assert set(mlp_adam.flagged("sp")) == {"fc2", "head"}
    assert mlp_adam.flagged("mup") == {}


def test_gpt2_from_config_sp_grows_and_mup_is_flat():
    # Measured (2-core CPU, widths 32..256, 3 Adam steps at 1e-2, 4 sequences of 32 bytes of
    # stdlib text): SP lm_head +0.8, every c_proj above +1.3; muP every layer within 0.16 of 0
    # for this seed (0.31 at most for seed 1).
    from initlab.lab.width import family_template

    cc = coord_check(family_template("hf:gpt2"), [32, 64, 128, 256], steps=3, seeds=[0],
                     batch_size=4, seq_len=32)  # fmt: skip
    sp, mu = cc.slopes("sp"), cc.slopes("mup")
    assert sp["lm_head"][-1] > 0.5
    assert all(v[-1] > 1.0 for k, v in sp.items() if k.endswith("c_proj"))
    assert abs(mu["lm_head"][-1]) < 0.2
    assert all(abs(v[-1]) < 0.3 for v in mu.values()), {k: v[-1] for k, v in mu.items()}
    assert cc.notes["mup"] == []  # attention 1/d set, readout hooked: nothing left unscaled
