"""initlab.init against torch.nn.init (torch 2.13): bit-for-bit on contiguous tensors."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torch.nn import init as tinit

from initlab import init as iinit

SHAPES = [(7, 5), (5, 7), (16, 8, 3), (8, 4, 3, 3), (4, 6, 2, 3, 2), (1, 1), (3, 300)]


def _pair(shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)


def _gens(seed):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


CASES = [
    ("uniform_", {}),
    ("uniform_", {"a": -0.3, "b": 2.5}),
    ("normal_", {}),
    ("normal_", {"mean": 1.5, "std": 0.02}),
    ("xavier_uniform_", {}),
    ("xavier_uniform_", {"gain": 5 / 3}),
    ("xavier_normal_", {}),
    ("xavier_normal_", {"gain": 2**0.5}),
    ("kaiming_uniform_", {}),
    ("kaiming_uniform_", {"a": 5**0.5}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_uniform_", {"nonlinearity": "tanh"}),
    ("kaiming_normal_", {}),
    ("kaiming_normal_", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal_", {"nonlinearity": "selu"}),
    ("orthogonal_", {}),
    ("orthogonal_", {"gain": 1.7}),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("fn", "kwargs"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bit_parity_with_generator(fn, kwargs, shape, dtype):
    a, b = _pair(shape, dtype)
    ga, gb = _gens(1234)
    getattr(tinit, fn)(a, generator=ga, **kwargs)
    getattr(iinit, fn)(b, generator=gb, **kwargs)
    assert torch.equal(a, b)
    # the generators advanced identically too
    assert torch.equal(ga.get_state(), gb.get_state())


@pytest.mark.parametrize(("fn", "kwargs"), CASES)
def test_bit_parity_with_global_rng(fn, kwargs):
    a, b = _pair((9, 4, 3))
    torch.manual_seed(7)
    getattr(tinit, fn)(a, **kwargs)
    torch.manual_seed(7)
    getattr(iinit, fn)(b, **kwargs)
    assert torch.equal(a, b)


def test_trunc_normal_torch_method_parity():
    for mean, std, lo, hi in [(0, 1, -2, 2), (0, 0.02, -0.04, 0.04), (1, 2, 0, 5), (0, 1, 1.5, 3)]:
        a, b = _pair((64, 33))
        ga, gb = _gens(3)
        tinit.trunc_normal_(a, mean, std, lo, hi, generator=ga)
        iinit.trunc_normal_(b, mean, std, lo, hi, generator=gb, method="torch")
        assert torch.equal(a, b), (mean, std, lo, hi)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_deterministic_parity(shape):
    for fn, args in [("eye_", ()), ("ones_", ()), ("zeros_", ()), ("constant_", (0.37,))]:
        a, b = _pair(shape)
        getattr(tinit, fn)(a, *args)
        getattr(iinit, fn)(b, *args)
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(6, 4, 3), (6, 4, 3, 3), (6, 2, 3, 3, 3), (4, 6, 5, 5)])
@pytest.mark.parametrize("groups", [1, 2])
def test_dirac_parity(shape, groups):
    a, b = _pair(shape)
    tinit.dirac_(a, groups)
    iinit.dirac_(b, groups)
    assert torch.equal(a, b)


def test_sparse_parity_global_rng():
    a, b = _pair((20, 7))
    torch.manual_seed(11)
    tinit.sparse_(a, 0.3)
    torch.manual_seed(11)
    iinit.sparse_(b, 0.3)
    assert torch.equal(a, b)


def test_sparse_mask_from_generator_not_global_rng():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    t = torch.empty(30, 6)
    iinit.sparse_(t, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state), "sparse_ with a generator touched global RNG"
    t2 = torch.empty(30, 6)
    torch.manual_seed(99)  # a different global state must not change the result
    iinit.sparse_(t2, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(t, t2)
    assert ((t == 0).sum(0) == 15).all()


def test_calculate_gain_reexported():
    for name in ["linear", "relu", "tanh", "selu", "sigmoid", "conv2d"]:
        assert iinit.calculate_gain(name) == tinit.calculate_gain(name)
    assert iinit.calculate_gain("leaky_relu", 0.2) == tinit.calculate_gain("leaky_relu", 0.2)


def test_every_public_torch_function_exists_with_same_signature():
    names = {
        n
        for n, f in vars(tinit).items()
        if callable(f) and not inspect.isclass(f) and n.endswith("_") and not n.startswith("_")
    } | {"calculate_gain"}
    assert len(names) >= 15
    for name in sorted(names):
        assert hasattr(iinit, name), f"initlab.init lacks {name}"
        tparams = list(inspect.signature(getattr(tinit, name)).parameters.values())
        iparams = list(inspect.signature(getattr(iinit, name)).parameters.values())
        assert [p.name for p in iparams[: len(tparams)]] == [p.name for p in tparams], name
        for tp, ip in zip(tparams, iparams, strict=False):
            assert tp.default == ip.default, (name, tp.name)
        # anything extra is keyword-only, so positional calls written for torch still work
        assert all(p.kind is p.KEYWORD_ONLY for p in iparams[len(tparams) :]), name


def test_deprecated_aliases_warn_like_torch():
    t = torch.empty(3, 3)
    with pytest.warns(FutureWarning, match="deprecated"):
        iinit.normal(t)


def test_kaiming_zero_element_warns_like_torch():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        iinit.kaiming_uniform_(torch.empty(0, 3))
    assert any("zero-element" in str(w.message) for w in rec)


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [("kaiming_normal_", {}), ("xavier_uniform_", {}), ("normal_", {}), ("orthogonal_", {})],
)
def test_channels_last_gets_same_values_as_contiguous(fn, kwargs):
    a = torch.empty(8, 4, 3, 3)
    b = torch.empty(8, 4, 3, 3).to(memory_format=torch.channels_last)
    assert not b.is_contiguous()
    ga, gb = _gens(5)
    getattr(iinit, fn)(a, generator=ga, **kwargs)
    getattr(iinit, fn)(b, generator=gb, **kwargs)
    assert b.is_contiguous(memory_format=torch.channels_last)  # layout kept
    assert torch.equal(a, b)


def test_parameter_identity_and_grad_kept():
    p = torch.nn.Parameter(torch.empty(4, 4))
    ptr = p.data_ptr()
    out = iinit.kaiming_normal_(p, generator=torch.Generator().manual_seed(0))
    assert out is p and p.data_ptr() == ptr and p.requires_grad and p.grad_fn is None


def test_meta_tensor_is_noop():
    t = torch.empty(4, 4, device="meta")
    assert iinit.orthogonal_(t) is t
    assert iinit.kaiming_uniform_(t) is t
