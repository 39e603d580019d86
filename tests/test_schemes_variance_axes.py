"""variance_scaling with explicit axes: window fills, validation and target std."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.schemes.structured import Scaled
from initlab.schemes.variance import VarianceScaling
from initlab.streams import KeyedStream


# -- 1. variance_scaling axes reach validate / fill_window / target_std ---------------------
def test_variance_scaling_axes_window_fill_matches_full_fill():
    s = VarianceScaling(1.0, "fan_in", "uniform", in_axis=0, out_axis=1)
    shape = (4, 1000)
    full = torch.empty(shape)
    s(full, None, KeyedStream(0, "w"))
    assert full.abs().max().item() <= math.sqrt(3 / 4)
    assert full.abs().max().item() > math.sqrt(3 / 1000) * 5  # fan_in is 4, not 1000
    local = torch.empty(2, 300)
    idx = (slice(1, 3), slice(500, 800))
    s.fill_window(local, shape, idx, None, KeyedStream(0, "w"))
    assert torch.equal(local, full[idx])
    assert local.abs().max().item() > math.sqrt(3 / 1000) * 5


def test_variance_scaling_axes_validate_and_target_std():
    s = VarianceScaling(2.0, "fan_in", "normal", in_axis=0, out_axis=1)
    fans = s.validate((4, 1000), None)
    assert (fans.fan_in, fans.fan_out) == (4, 1000)
    assert s.target_std(fans) == pytest.approx(math.sqrt(2 / 4))
    sc = Scaled(s, 0.5)
    assert sc.target_std(sc.validate((4, 1000), None)) == pytest.approx(0.5 * math.sqrt(2 / 4))
    # the axes override layer fans passed in, as the old __call__ did
    other = initlab.compute_fans(nn.Linear(1000, 4), "weight")
    assert s.validate((4, 1000), other).fan_in == 4


def test_scaled_window_fill_uses_base_axes_fans():
    s = Scaled(VarianceScaling(1.0, "fan_in", "uniform", in_axis=0, out_axis=1), 2.0)
    shape = (4, 64)
    full = torch.empty(shape)
    s(full, None, KeyedStream(1, "w"))
    local = torch.empty(4, 10)
    s.fill_window(local, shape, (slice(None), slice(3, 13)), None, KeyedStream(1, "w"))
    assert torch.equal(local, full[:, 3:13])


# -- 2. delta_orthogonal checks groups in validate ------------------------------------------
