"""Regression tests for the scheme review findings (axes fans, groups, moments, drop-in types)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import truncnorm
from torch import nn

import initlab
from initlab import init
from initlab.schemes import get_scheme
from initlab.schemes.base import Scheme
from initlab.schemes.basic import Constant, TruncNormal, _trunc_moments_std
from initlab.schemes.orthogonal import DeltaOrthogonal
from initlab.schemes.structured import Scaled, ZerO
from initlab.schemes.variance import KaimingUniform, VarianceScaling, _nonlinearity_gain
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
def test_delta_orthogonal_grouped_shape_fails_in_validate():
    conv = nn.Conv2d(8, 4, 3, groups=2)
    fans = initlab.compute_fans(conv, "weight")
    shape = tuple(conv.weight.shape)  # (4, 4, 3, 3): per group [out/g, in/g] = [2, 4]
    with pytest.raises(ValueError, match=r"\[out/g, in/g\] = \[2, 4\]"):
        DeltaOrthogonal().validate(shape, fans)
    before = conv.weight.detach().clone()
    with pytest.raises(ValueError):
        DeltaOrthogonal()(conv.weight, fans)
    assert torch.equal(conv.weight, before)


def test_delta_orthogonal_grouped_ok_shape_validates():
    conv = nn.Conv2d(4, 8, 3, groups=2)  # per group [4, 2]
    fans = initlab.compute_fans(conv, "weight")
    assert DeltaOrthogonal().validate(tuple(conv.weight.shape), fans) is fans


# -- 3. truncated-normal moments ------------------------------------------------------------
@pytest.mark.parametrize(
    "a,b", [(-2, 2), (0, math.inf), (10, 11), (-40, -39), (5, 6), (-3, -1), (-math.inf, 1)]
)
def test_trunc_moments_std_matches_scipy(a, b):
    assert _trunc_moments_std(a, b) == pytest.approx(float(truncnorm.std(a, b)), rel=1e-6)


def test_trunc_moments_std_narrow_tail():
    # scipy 1.17 itself is off by 4.9e-6 here; reference from mpmath at 200 digits
    assert _trunc_moments_std(4, 4.001) == pytest.approx(2.886750142846968209e-4, rel=1e-10)
    assert _trunc_moments_std(-4.001, -4) == pytest.approx(2.886750142846968209e-4, rel=1e-10)
    assert _trunc_moments_std(4, 4.001) == pytest.approx(float(truncnorm.std(4, 4.001)), rel=1e-5)


def test_trunc_normal_target_std_far_tails_do_not_raise():
    assert TruncNormal(std=2.0, a=10, b=11, bounds="std").target_std(None) == pytest.approx(
        2 * float(truncnorm.std(10, 11)), rel=1e-6
    )
    assert TruncNormal(a=-40, b=-39).target_std(None) == pytest.approx(
        float(truncnorm.std(-40, -39)), rel=1e-6
    )
    r = _trunc_moments_std(1e308, math.inf)  # std ~ 1e-308: not representable usefully
    assert r is None or 0.0 <= r < 1e-300


# -- 4. ZerO honours conv groups -------------------------------------------------------------
def test_zero_hadamard_depthwise_is_identity_per_channel():
    conv = nn.Conv2d(32, 32, 3, groups=32, padding=1, bias=False)
    fans = initlab.compute_fans(conv, "weight")
    ZerO()(conv.weight, fans)
    w = conv.weight.detach()
    assert torch.equal(w[:, 0, 1, 1], torch.ones(32))
    assert w.abs().sum().item() == 32.0
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        y = conv(x)
    assert torch.allclose(y, x)
    assert y.norm().item() == pytest.approx(x.norm().item(), rel=1e-6)


def test_zero_hadamard_grouped_one_matrix_per_group():
    conv = nn.Conv2d(8, 16, 1, groups=2, bias=False)  # per group [8, 4]: Hadamard rows
    fans = initlab.compute_fans(conv, "weight")
    ZerO()(conv.weight, fans)
    w = conv.weight.detach()[:, :, 0, 0]
    per = initlab.schemes.structured.zero_matrix(8, 4).float()
    assert torch.equal(w[:8], per) and torch.equal(w[8:], per)
    # each group's block has orthonormal columns (m = 8 is a power of two): the group maps its
    # 4 inputs isometrically; the ungrouped matrix zero_matrix(16, 4) split in halves would not
    for g in range(2):
        blk = w[8 * g : 8 * (g + 1)].double()
        assert torch.allclose(blk.T @ blk, torch.eye(4, dtype=torch.float64), atol=1e-6)
    assert abs(w[0, 0].item()) == pytest.approx(2**-1.5)


# -- 5. drop-in argument types ---------------------------------------------------------------
def _pair(shape=(7, 5)):
    return torch.empty(shape), torch.empty(shape)


@pytest.mark.parametrize(
    "fn,args,kwargs",
    [
        ("constant_", (np.float32(0.5),), {}),
        ("constant_", (torch.tensor(0.5),), {}),
        ("constant_", (True,), {}),
        ("uniform_", (np.float32(-1), 1), {}),
        ("normal_", (), {"std": np.float32(0.1)}),
        ("xavier_uniform_", (), {"gain": np.float32(2)}),
        ("xavier_normal_", (), {"gain": torch.tensor(1.5)}),
        ("orthogonal_", (), {"gain": torch.tensor(2.0)}),
        ("kaiming_uniform_", (), {"mode": "FAN_OUT"}),
        ("kaiming_normal_", (), {"mode": "Fan_In", "nonlinearity": "relu"}),
        ("sparse_", (np.float64(0.3),), {"std": np.float32(0.1)}),
    ],
)
def test_dropin_numeric_types_bit_parity(fn, args, kwargs):
    ours, ref = _pair()
    random = fn not in ("constant_",)
    gen_kw = {"generator": torch.Generator().manual_seed(3)} if random else {}
    ref_kw = {"generator": torch.Generator().manual_seed(3)} if random else {}
    if fn == "sparse_":  # torch draws sparse_'s mask from the global generator
        torch.manual_seed(0)
        getattr(torch.nn.init, fn)(ref, *args, **kwargs)
        torch.manual_seed(0)
        getattr(init, fn)(ours, *args, **kwargs)
    else:
        getattr(torch.nn.init, fn)(ref, *args, **kwargs, **ref_kw)
        getattr(init, fn)(ours, *args, **kwargs, **gen_kw)
    assert torch.equal(ours, ref)


def test_dropin_numbers_are_stored_as_python_numbers():
    assert type(Constant(np.float32(0.5)).val) is float
    assert type(Constant(torch.tensor(0.5)).val) is float
    assert Constant(True).val == 1 and type(Constant(True).val) is int
    assert type(Constant(np.int64(3)).val) is int
    assert type(Constant(torch.tensor(3)).val) is int
    s = get_scheme("uniform", a=np.float32(-1), b=torch.tensor(2.0))
    assert (type(s.a), type(s.b)) == (float, float)
    assert get_scheme("kaiming_uniform", mode="FAN_OUT").mode == "fan_out"
    assert VarianceScaling(np.float64(2.0), "FAN_AVG").mode == "fan_avg"
    for sch in (
        s,
        get_scheme("xavier_uniform", gain=np.float32(2)),
        get_scheme("orthogonal", gain=torch.tensor(2.0)),
        get_scheme("trunc_normal", mean=np.float32(0), std=torch.tensor(0.5), a=np.int32(-1)),
    ):
        json.dumps(sch.to_config())
        assert Scheme.from_config(sch.to_config()) == sch


def test_dropin_rejects_non_scalar_tensors_and_bool_gains():
    with pytest.raises(ValueError):
        Constant(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError):
        get_scheme("orthogonal", gain=torch.tensor([2.0]))
    with pytest.raises(ValueError):
        get_scheme("orthogonal", gain=True)


# -- 6. nonlinearity gains -----------------------------------------------------------------
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
def test_window_buffer_on_meta_device_noncontiguous():
    # a non-contiguous local window on a non-CPU device must not get a CPU work buffer
    s = get_scheme("uniform")
    local = torch.empty(6, 4).t()  # non-contiguous CPU
    s.fill_window(local, (4, 6), (slice(None), slice(None)), None, KeyedStream(0, "u"))
    full = torch.empty(4, 6)
    s(full, None, KeyedStream(0, "u"))
    assert torch.equal(local, full)
    with open(initlab.schemes.base.__file__) as f:
        src = f.read()
    assert "torch.empty(local.shape, dtype=local.dtype)" not in src
    assert "torch.empty(region.shape, dtype=region.dtype)" not in src


# -- 8. check_source -------------------------------------------------------------------------
def test_check_source():
    TruncNormal().check_source("keyed")
    TruncNormal().check_source("torch")
    TruncNormal(method="torch").check_source("torch")
    with pytest.raises(ValueError, match=r"trunc_normal\(method='torch'\) needs rng='torch'"):
        TruncNormal(method="torch").check_source("keyed")
    with pytest.raises(ValueError, match="needs rng='torch'"):
        Scaled(TruncNormal(method="torch"), 2.0).check_source("keyed")
    Scaled(TruncNormal(), 2.0).check_source("keyed")
    get_scheme("orthogonal").check_source("keyed")
    with pytest.raises(ValueError, match="kind"):
        get_scheme("uniform").check_source("numpy")
