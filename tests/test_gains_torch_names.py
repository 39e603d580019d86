"""Gains from torch's nonlinearity names: case-insensitive, slope zero."""

from __future__ import annotations

import math

import pytest
import torch

import initlab
from initlab.schemes.variance import KaimingUniform, _nonlinearity_gain


def test_nonlinearity_gain_case_insensitive_torch_names():
    assert _nonlinearity_gain("Sigmoid", 0) == 1
    assert _nonlinearity_gain("TANH", 0) == pytest.approx(5 / 3)
    assert KaimingUniform(nonlinearity="ReLU")._std(initlab.fans_from_shape((4, 9))) == (
        pytest.approx(math.sqrt(2) / 3)
    )


def test_nonlinearity_gain_zero_slope_is_slope_zero():
    assert _nonlinearity_gain("prelu", 0) == pytest.approx(math.sqrt(2), rel=1e-12)
    assert _nonlinearity_gain("prelu", 0.25) == pytest.approx(math.sqrt(2 / (1 + 0.25**2)))
    assert _nonlinearity_gain("leaky_relu", 0) == math.sqrt(2.0)  # torch's default a=0
    assert _nonlinearity_gain("elu", 0) == pytest.approx(initlab.gain("elu"))
    assert torch.nn.init.calculate_gain("leaky_relu", 0) == _nonlinearity_gain("leaky_relu", 0)


# -- 7. window buffers keep the device -------------------------------------------------------
