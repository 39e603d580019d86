"""Scheme objects: registry, configs, statistics, blocks, custom values, bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import initlab
from initlab import Block, Fans, get_scheme
from initlab.schemes import Scheme, list_schemes, register_scheme


def values_fn(shape, generator):  # module level: importable, so a custom scheme round-trips
    return np.full(shape, 0.25)


EXAMPLES: dict[str, list[dict]] = {
    "uniform": [{}, {"a": -1.0, "b": 3.0}],
    "normal": [{}, {"mean": 0.5, "std": 0.02}],
    "trunc_normal": [{}, {"std": 0.02, "bounds": "std"}, {"a": float("-inf"), "b": 1.0}],
    "constant": [{"val": 0.3}],
    "zeros": [{}],
    "ones": [{}],
    "eye": [{}],
    "identity": [{}, {"gain": 2.0}],
    "dirac": [{}, {"groups": 2}],
    "sparse": [{"sparsity": 0.1}],
    "orthogonal": [{}, {"gain": 1.4}],
    "delta_orthogonal": [{}],
    "zero_hadamard": [{}],
    "variance_scaling": [{}, {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"},
                         {"in_axis": 1, "out_axis": 0, "batch_axis": ()}],
    "xavier_uniform": [{}, {"gain": 5 / 3}],
    "xavier_normal": [{}],
    "kaiming_uniform": [{}, {"a": 0.1, "mode": "fan_out", "nonlinearity": "relu"}],
    "kaiming_normal": [{}, {"nonlinearity": "gelu"}],
    "lecun_uniform": [{}],
    "lecun_normal": [{}, {"distribution": "normal"}],
    "torch_default": [{}],
    "custom": [{"fn": f"{__name__}:values_fn"}],
    "scaled": [{"base": {"name": "kaiming_normal", "nonlinearity": "relu"}, "factor": 0.5}],
}  # fmt: skip


def test_every_registered_scheme_has_an_example():
    names = {c.name for c in list_schemes()}
    assert names - set(EXAMPLES) == set(), "add the new scheme to EXAMPLES"


@pytest.mark.parametrize(("name", "params"), [(n, p) for n, ps in EXAMPLES.items() for p in ps])
def test_config_round_trip_is_lossless_and_json_safe(name, params):
    s = get_scheme(name, **params)
    cfg = s.to_config()
    text = json.dumps(cfg)
    back = Scheme.from_config(json.loads(text))
    assert back == s
    assert back.to_config() == cfg
    assert type(back) is type(s)
    assert s.name and s.formula and s.paper


def test_schemes_are_immutable_and_hashable():
    s = get_scheme("kaiming_normal", mode="fan_out")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "fan_in"  # type: ignore[misc]
    assert hash(s) == hash(get_scheme("kaiming_normal", mode="fan_out"))


def test_aliases_and_name_normalisation():
    assert type(get_scheme("he_normal")) is type(get_scheme("kaiming_normal"))
    assert type(get_scheme("Glorot-Uniform")) is type(get_scheme("xavier_uniform"))
    assert get_scheme({"name": "normal", "std": 2.0}).std == 2.0


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(KeyError, match="kaiming_normal"):
        get_scheme("kaimin_normal")


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(TypeError, match="parameters are: mean, std"):
        get_scheme("normal", sd=1.0)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("normal", {"std": -1.0}, "std must be"),
        ("trunc_normal", {"std": 0.0}, "std must be a positive"),
        ("trunc_normal", {"a": 2.0, "b": -2.0}, "need a < b"),
        ("uniform", {"a": 2.0, "b": 1.0}, "a <= b"),
        ("kaiming_normal", {"nonlinearity": "relux"}, "relu"),
        ("kaiming_normal", {"mode": "fan_mean"}, "fan_avg"),
        ("variance_scaling", {"distribution": "gaussian"}, "truncated_normal"),
        ("variance_scaling", {"scale": 0.0}, "positive"),
        ("variance_scaling", {"in_axis": 0}, "both in_axis and out_axis"),
    ],
)
def test_bad_parameters_are_rejected_with_a_clear_error(name, params, match):
    with pytest.raises((ValueError, KeyError), match=match):
        get_scheme(name, **params)


def test_fan_of_1d_tensor_errors_and_leaves_tensor_untouched():
    t = torch.full((5,), 3.0)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        initlab.init.kaiming_normal_(t)
    assert torch.equal(t, torch.full((5,), 3.0))


def test_blocks_that_do_not_divide_error_before_writing():
    t = torch.full((10, 4), 7.0)
    fans = Fans(4, 3, blocks=(Block("a", 0, 3), Block("b", 3, 6), Block("c", 6, 9)))
    with pytest.raises(ValueError, match="divide"):
        get_scheme("xavier_uniform")(t, fans)
    assert (t == 7.0).all()


# -- statistics -------------------------------------------------------------------------------
N_OUT, N_IN = 1000, 800  # 800k samples: relative std error of a std estimate ~ 0.08%


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
def test_variance_scaling_hits_its_variance(distribution, mode):
    scale = 2.0
    t = torch.empty(N_OUT, N_IN)
    get_scheme("variance_scaling", scale=scale, mode=mode, distribution=distribution)(
        t, generator=torch.Generator().manual_seed(0)
    )
    n = {"fan_in": N_IN, "fan_out": N_OUT, "fan_avg": (N_IN + N_OUT) / 2,
         "fan_geo_avg": math.sqrt(N_IN * N_OUT)}[mode]  # fmt: skip
    std = math.sqrt(scale / n)
    assert abs(t.mean().item()) < 0.01 * std  # 4 std errors is 0.0045 std
    assert t.std().item() == pytest.approx(std, rel=0.005)
    if distribution == "uniform":
        assert t.abs().max().item() <= math.sqrt(3) * std
    if distribution == "truncated_normal":
        assert t.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-7


def test_variance_scaling_explicit_axes_jax_layout():
    # a JAX-layout conv kernel [kh, kw, in, out]: fan_in = 3*3*16
    t = torch.empty(3, 3, 16, 400)
    s = get_scheme("variance_scaling", scale=1.0, mode="fan_in", distribution="normal",
                   in_axis=-2, out_axis=-1)  # fmt: skip
    s(t, generator=torch.Generator().manual_seed(1))
    assert t.std().item() == pytest.approx(1 / math.sqrt(144), rel=0.01)


def test_kaiming_with_any_activation_uses_numeric_gain():
    t = torch.empty(1000, 500)
    get_scheme("kaiming_normal", nonlinearity="gelu")(t, generator=torch.Generator().manual_seed(0))
    assert t.std().item() == pytest.approx(initlab.gain("gelu") / math.sqrt(500), rel=0.005)


def test_packed_blocks_get_per_block_variance():
    """A packed MHA in_proj [3E, E] gets the same per-block variance as separate q/k/v."""
    e = 256
    mha = torch.nn.MultiheadAttention(e, 4)
    fans = initlab.compute_fans(mha, "in_proj_weight")
    assert [b.name for b in fans.blocks] == ["q", "k", "v"]
    w = torch.empty(3 * e, e)
    get_scheme("xavier_normal")(w, fans, torch.Generator().manual_seed(0))
    expected = math.sqrt(2.0 / (e + e))  # each block is an (E, E) projection
    for i in range(3):
        assert w[i * e : (i + 1) * e].std().item() == pytest.approx(expected, rel=0.01)
    torch_rule = math.sqrt(2.0 / (e + 3 * e))  # what torch's shape rule gives the whole
    assert abs(w.std().item() - torch_rule) > 0.1 * torch_rule


@pytest.mark.parametrize(
    ("name", "params", "std"),
    [
        ("xavier_uniform", {}, math.sqrt(2 / (N_IN + N_OUT))),
        ("xavier_normal", {"gain": 2.0}, 2 * math.sqrt(2 / (N_IN + N_OUT))),
        ("kaiming_uniform", {"nonlinearity": "relu"}, math.sqrt(2 / N_IN)),
        ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / N_OUT)),
        ("lecun_uniform", {}, math.sqrt(1 / N_IN)),
        ("lecun_normal", {}, math.sqrt(1 / N_IN)),
        ("lecun_normal", {"distribution": "normal"}, math.sqrt(1 / N_IN)),
        ("uniform", {"a": -1.0, "b": 1.0}, 1 / math.sqrt(3)),
        ("normal", {"std": 0.02}, 0.02),
        ("trunc_normal", {"std": 0.02, "a": -2, "b": 2, "bounds": "std"}, 0.02 * 0.8796256610),
    ],
)
def test_named_schemes_hit_their_std(name, params, std):
    t = torch.empty(N_OUT, N_IN)
    s = get_scheme(name, **params)
    s(t, generator=torch.Generator().manual_seed(2))
    assert t.std().item() == pytest.approx(std, rel=0.005)
    assert s.target_std(initlab.fans_from_shape(t.shape)) == pytest.approx(std, rel=1e-6)


def test_trunc_normal_absolute_bounds_truncate_nothing_at_small_std():
    """torch semantics: std=0.02 with a=-2, b=2 is (almost) a plain normal (timm issue 1286)."""
    t = torch.empty(500_000)
    get_scheme("trunc_normal", std=0.02)(t, generator=torch.Generator().manual_seed(0))
    assert t.std().item() == pytest.approx(0.02, rel=0.005)
    u = torch.empty(500_000)
    get_scheme("trunc_normal", std=0.02, bounds="std")(
        u, generator=torch.Generator().manual_seed(0)
    )
    assert u.abs().max().item() <= 0.04


def test_trunc_normal_tiny_std_has_no_outliers():
    t = torch.empty(2_000_000)
    get_scheme("trunc_normal", std=0.002, a=-0.004, b=0.004)(
        t, generator=torch.Generator().manual_seed(0)
    )
    assert t.abs().max().item() <= 0.004
    z = t / 0.002
    kurt = ((z - z.mean()) ** 4).mean() / z.var() ** 2
    assert kurt.item() == pytest.approx(2.36, abs=0.02)  # kurtosis of N(0,1) on [-2, 2]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    name=st.sampled_from(["xavier_uniform", "kaiming_normal", "lecun_uniform", "orthogonal"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_same_generator_state_same_values(rows, cols, name, seed):
    a, b = torch.empty(rows, cols), torch.empty(rows, cols)
    s = get_scheme(name)
    s(a, generator=torch.Generator().manual_seed(seed))
    s(b, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


# -- custom values ----------------------------------------------------------------------------
def test_custom_numpy_float64_keeps_parameter_dtype_device_identity():
    lin = torch.nn.Linear(4, 3)
    p = lin.weight
    ptr = p.data_ptr()
    s = get_scheme("custom", fn=lambda shape, g: np.random.default_rng(0).uniform(3, 5, size=shape))
    s(p)
    assert lin.weight is p and p.data_ptr() == ptr and p.dtype == torch.float32
    assert ((p >= 3) & (p <= 5)).all()


def test_custom_wrong_shape_is_rejected_and_tensor_untouched():
    t = torch.zeros(3, 4)
    s = get_scheme("custom", fn=lambda shape, g: np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\)"):
        s(t)
    assert (t == 0).all()


def test_custom_lambda_cannot_be_serialised_with_a_clear_message():
    s = get_scheme("custom", fn=lambda shape, g: np.ones(shape))
    with pytest.raises(ValueError, match="module level"):
        s.to_config()


def test_custom_receives_generator():
    seen = []
    s = get_scheme("custom", fn=lambda shape, g: seen.append(g) or torch.rand(shape, generator=g))
    g = torch.Generator().manual_seed(0)
    s(torch.empty(2, 2), generator=g)
    assert seen == [g]


def test_user_registered_scheme():
    @register_scheme
    @dataclasses.dataclass(frozen=True)
    class HalfOnes(Scheme):
        name = "test_half_ones"
        formula = "W = 0.5"
        paper = "-"
        value: float = 0.5

        def fill(self, t, fans, rng):
            t.fill_(self.value)

    t = torch.empty(2, 3)
    get_scheme("test_half_ones")(t)
    assert (t == 0.5).all()
    assert Scheme.from_config({"name": "test_half_ones", "value": 0.5}) == HalfOnes()
    with pytest.raises(ValueError, match="already registered"):

        @register_scheme
        @dataclasses.dataclass(frozen=True)
        class Other(Scheme):
            name = "test_half_ones"


def test_blocks_with_their_own_fans_get_their_own_scale():
    """MHA with kdim/vdim != E: in_proj_bias's q, k, v blocks have different fans."""
    mha = torch.nn.MultiheadAttention(64, 4, kdim=16, vdim=256)
    fans = initlab.compute_fans(mha, "in_proj_bias")
    assert [(b.name, b.fan_in) for b in fans.blocks] == [("q", 64), ("k", 16), ("v", 256)]
    b = torch.empty(3 * 64 * 1000)  # a long stand-in with the same three blocks, scaled up
    big = Fans(1, 1, blocks=tuple(
        Block(x.name, x.start * 1000, x.stop * 1000, 0, x.fan_in, x.fan_out) for x in fans.blocks
    ))  # fmt: skip
    get_scheme("lecun_normal", distribution="normal")(b, big, torch.Generator().manual_seed(0))
    for i, fan_in in enumerate((64, 16, 256)):
        block = b[i * 64000 : (i + 1) * 64000]
        assert block.std().item() == pytest.approx(1 / math.sqrt(fan_in), rel=0.02)
