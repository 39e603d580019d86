"""initlab.calculate_gain (parity with torch 2.13) and initlab.gain (1/sqrt(E[f(z)²]))."""

from __future__ import annotations

import functools
import gc
import importlib
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from initlab.gain import GAIN_NAMES, calculate_gain, gain

gain_module = importlib.import_module("initlab.gain")  # initlab.gain the attribute is the function

TORCH_NAMES = [
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
LEAKY_PARAMS = [None, 0, 1, 3, -2, 0.0, 0.01, 0.2, -0.5, 1.0, 5.5, 1e-300, np.float64(0.3)]


# ------------------------------------------------------------------------- calculate_gain


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_calculate_gain_parity(name):
    ours, theirs = calculate_gain(name), torch.nn.init.calculate_gain(name)
    assert ours == theirs
    assert type(ours) is type(theirs)  # torch returns the int 1 for the linear names


@pytest.mark.parametrize("param", LEAKY_PARAMS)
def test_calculate_gain_leaky_relu_params(param):
    ours = calculate_gain("leaky_relu", param)
    theirs = torch.nn.init.calculate_gain("leaky_relu", param)
    assert ours == theirs and type(ours) is type(theirs)


def test_calculate_gain_ignores_param_like_torch():
    assert calculate_gain("relu", 0.5) == torch.nn.init.calculate_gain("relu", 0.5)
    assert calculate_gain("tanh", True) == torch.nn.init.calculate_gain("tanh", True)


BAD_CALLS = [
    ("foo", None),
    ("Relu", None),
    ("", None),
    (None, None),
    (3, None),
    (["relu"], None),
    ("gelu", None),
    ("leaky_relu", True),
    ("leaky_relu", False),
    ("leaky_relu", "0.1"),
    ("leaky_relu", np.float32(0.1)),
    ("leaky_relu", np.int64(1)),
    ("leaky_relu", 1 + 2j),
    ("leaky_relu", [0.1]),
    ("leaky_relu", 1e200),  # OverflowError in slope**2, in both
    ("leaky_relu", 10**400),  # OverflowError int -> float, in both
]


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return ("raise", type(e))


@pytest.mark.parametrize(("nonlinearity", "param"), BAD_CALLS)
def test_calculate_gain_error_parity(nonlinearity, param):
    theirs = _outcome(torch.nn.init.calculate_gain, nonlinearity, param)
    ours = _outcome(calculate_gain, nonlinearity, param)
    assert theirs[0] == "raise"
    assert ours == theirs


def test_calculate_gain_unknown_lists_names():
    with pytest.raises(ValueError, match="leaky_relu"):
        calculate_gain("swish")


# ----------------------------------------------------------------------------------- gain


def _reference_m2(f, points=(-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)) -> float:
    """E[f(z)²] independently of initlab: adaptive quadrature split at kinks (scipy), or a dense
    float64 trapezoid on [-40, 40] with 2e6 intervals when scipy is missing."""
    try:
        from scipy import integrate
    except ImportError:
        z = torch.linspace(-40.0, 40.0, 2_000_001, dtype=torch.float64)
        y = f(z).double() ** 2 * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return float(torch.trapezoid(y, z))

    def integrand(z: float) -> float:
        v = float(f(torch.tensor([z], dtype=torch.float64))[0])
        return v * v * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    edges = (-40.0, *points, 40.0)
    with warnings.catch_warnings():  # quad may report reaching its roundoff floor (~1e-15)
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(
            integrate.quad(integrand, lo, hi, epsabs=0.0, epsrel=1e-12, limit=200)[0]
            for lo, hi in itertools.pairwise(edges)
        )


def test_relu_is_sqrt2():
    assert abs(gain("relu") - math.sqrt(2.0)) < 1e-12


def test_linear_is_one():
    for name in ("linear", "identity", "conv2d"):
        assert gain(name) == 1.0
    assert abs(gain(lambda x: x) - 1.0) < 1e-13


def test_selu_is_one():
    # SELU's constants make (mean 0, var 1) its fixed point, so E[selu(z)²] = 1.
    assert abs(gain("selu") - 1.0) < 1e-9


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.1, 0.2, 0.5, 1.0, -0.3, 2.0])
def test_leaky_relu_closed_form(slope):
    assert abs(gain("leaky_relu", slope) - math.sqrt(2.0 / (1.0 + slope**2))) < 1e-12
    assert gain("prelu", slope) == gain("leaky_relu", slope)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-20.0, max_value=20.0, allow_nan=False))
def test_leaky_relu_hypothesis(slope):
    expected = math.sqrt(2.0 / (1.0 + slope**2))
    assert gain("leaky_relu", slope) == pytest.approx(expected, rel=1e-12)
    assert gain(functools.partial(F.leaky_relu, negative_slope=slope)) == pytest.approx(
        expected, rel=1e-12
    )


def test_tanh_monte_carlo():
    # 1e7 float64 samples; tolerance: 5 standard errors of the mean of tanh(z)², which is
    # about 5 * 0.27/sqrt(1e7) = 4e-4 on E[tanh²] ≈ 0.394 (0.1% relative).
    g = torch.Generator().manual_seed(1234)
    z = torch.randn(10_000_000, dtype=torch.float64, generator=g)
    y = torch.tanh(z).square_()
    mean, se = float(y.mean()), float(y.std()) / math.sqrt(y.numel())
    m2 = gain("tanh") ** -2
    assert abs(m2 - mean) < 5 * se
    assert gain("tanh") != calculate_gain("tanh")  # 1.5925 is not the conventional 5/3


NAMED_REFERENCES = {
    "gelu": (F.gelu, None),
    "gelu_tanh": (functools.partial(F.gelu, approximate="tanh"), None),
    "silu": (F.silu, None),
    "mish": (F.mish, None),
    "tanh": (torch.tanh, None),
    "sigmoid": (torch.sigmoid, None),
    "elu": (functools.partial(F.elu, alpha=0.7), 0.7),
    "celu": (functools.partial(F.celu, alpha=2.0), 2.0),
    "softplus": (functools.partial(F.softplus, beta=1.0), 1.0),
    "hardswish": (F.hardswish, None),
    "hardsigmoid": (F.hardsigmoid, None),
    "hardtanh": (F.hardtanh, None),
    "relu6": (F.relu6, None),
    "logsigmoid": (F.logsigmoid, None),
    "softsign": (F.softsign, None),
    "tanhshrink": (F.tanhshrink, None),
    "selu": (F.selu, None),
}


@pytest.mark.parametrize("name", sorted(NAMED_REFERENCES))
def test_named_against_reference(name):
    fn, param = NAMED_REFERENCES[name]
    expected = _reference_m2(fn) ** -0.5
    assert gain(name, param) == pytest.approx(expected, rel=1e-9, abs=0)


@pytest.mark.parametrize("shift", [0.123, 0.3, -1.7])
def test_callable_with_kink_off_the_grid(shift):
    # A kink that is not a panel boundary: the documented accuracy is ~3e-10 relative.
    def f(x):
        return F.relu(x - shift)

    expected = _reference_m2(f, points=(-6.0, -3.0, -1.0, 0.0, shift, 1.0, 3.0, 6.0)) ** -0.5
    assert gain(f) == pytest.approx(expected, rel=1e-8, abs=0)


def test_callable_kink_closed_form():
    # E[relu(z - c)²] = (1 + c²)·Φ(-c) - c·φ(c); documented bound 3.6e-9 relative on E[f²].
    for c in np.linspace(-2.0, 2.0, 41):
        c = float(c)
        exact = (1 + c * c) * 0.5 * math.erfc(c / math.sqrt(2)) - c * math.exp(
            -0.5 * c * c
        ) / math.sqrt(2 * math.pi)
        assert gain(lambda x, c=c: F.relu(x - c)) ** -2 == pytest.approx(exact, rel=4e-9)


def test_callables_equal_names():
    assert gain(lambda x: F.gelu(x)) == gain("gelu")
    assert gain(F.silu) == gain("silu") == gain("swish")
    assert gain(torch.tanh) == gain("tanh")
    assert gain(nn.GELU()) == gain("gelu")
    assert gain(nn.GELU(approximate="tanh")) == gain("gelu_tanh")
    assert gain(nn.LeakyReLU(0.2)) == pytest.approx(gain("leaky_relu", 0.2), rel=1e-15)
    assert gain(nn.PReLU()) == pytest.approx(gain("prelu"), rel=1e-7)  # float32 weight 0.25
    assert gain(nn.Sequential(nn.Softplus(), nn.Tanh())) > 0
    assert gain(lambda x: np.tanh(x.numpy())) == pytest.approx(gain("tanh"), rel=1e-15)


def test_inplace_module_does_not_corrupt_nodes():
    before = gain(lambda x: x.sin())
    gain(nn.ReLU(inplace=True))
    gain(lambda x: x.clamp_(min=0))
    assert gain(lambda x: x.sin()) == before
    assert gain(nn.ReLU(inplace=True)) == pytest.approx(math.sqrt(2), rel=1e-14)


def test_case_insensitive_and_float_return():
    assert gain("ReLU") == gain("relu")
    assert type(gain("relu")) is float
    assert type(gain(nn.GELU())) is float


def test_deterministic():
    first = {name: gain(name) for name in GAIN_NAMES}
    gain_module._named_gain.cache_clear()
    gain_module._rule.cache_clear()
    assert {name: gain(name) for name in GAIN_NAMES} == first


def test_errors():
    with pytest.raises(ValueError, match=r"valid names:.*gelu"):
        gain("not_an_activation")
    with pytest.raises(ValueError, match="zero"):
        gain(lambda x: x * 0)
    with pytest.raises(ValueError, match="zero"):
        gain(lambda x: torch.zeros_like(x))
    with pytest.raises(ValueError, match="not finite"):
        gain(lambda x: torch.where(x > 1, float("nan"), x))
    with pytest.raises(ValueError, match="not finite"):
        gain(torch.log)
    with pytest.raises(ValueError, match="converge"):
        gain(lambda x: torch.exp(0.25 * x * x))
    with pytest.raises(ValueError, match="elementwise"):
        gain(lambda x: x.sum())
    with pytest.raises(ValueError, match="no parameter"):
        gain("relu", 0.1)
    with pytest.raises(ValueError, match="not bool"):
        gain("leaky_relu", True)
    with pytest.raises(ValueError, match="finite"):
        gain("elu", float("nan"))
    with pytest.raises(ValueError, match="nonzero"):
        gain("celu", 0.0)
    with pytest.raises(ValueError, match="positive"):
        gain("softplus", -1.0)
    with pytest.raises(ValueError, match="partial"):
        gain(F.leaky_relu, 0.2)
    with pytest.raises(TypeError):
        gain(3.0)  # type: ignore[arg-type]


def test_callable_cache_is_weak():
    cache = gain_module._weak_cache
    n0 = len(cache)
    fns = [lambda x, k=k: x * (k + 1) for k in range(20)]
    values = [gain(f) for f in fns]
    assert values == pytest.approx([1.0 / (k + 1) for k in range(20)], rel=1e-13)
    assert len(cache) == n0 + 20
    del fns
    gc.collect()
    assert len(cache) == n0


def test_module_not_cached_when_mutated():
    m = nn.LeakyReLU(0.1)
    g1 = gain(m)
    m.negative_slope = 0.5
    assert gain(m) == pytest.approx(math.sqrt(2 / 1.25), rel=1e-13) != g1
