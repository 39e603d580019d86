"""Orthogonal and delta-orthogonal schemes: torch parity, orthogonality, packed blocks, layouts."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from initlab.fans import Block, Fans
from initlab.schemes.base import Scheme, get_scheme
from initlab.schemes.orthogonal import DeltaOrthogonal, Orthogonal


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ortho_error(w: torch.Tensor, gain: float) -> float:
    """max |W Wᵀ - gain² I| (rows <= cols) or max |WᵀW - gain² I| over the flattened matrix."""
    m = w.reshape(w.shape[0], -1).double()
    r, c = m.shape
    prod = m @ m.T if r <= c else m.T @ m
    eye = torch.eye(min(r, c), dtype=torch.float64)
    return (prod - gain**2 * eye).abs().max().item()


SHAPES = [(5, 5), (3, 7), (7, 3), (1, 6), (6, 1), (16, 4, 3, 3), (4, 8, 3), (2, 3, 2, 2, 2)]


# -- parity with torch.nn.init.orthogonal_ ------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 0.5, -2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orthogonal_bit_identical_to_torch_generator(shape, gain, dtype):
    ours = Orthogonal(gain)(torch.empty(shape, dtype=dtype), generator=_gen(11))
    ref = torch.nn.init.orthogonal_(torch.empty(shape, dtype=dtype), gain, generator=_gen(11))
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (8, 3, 3, 3)])
def test_orthogonal_bit_identical_to_torch_global_rng(shape):
    torch.manual_seed(1234)
    ours = Orthogonal(1.5)(torch.empty(shape))
    after_ours = torch.rand(3)
    torch.manual_seed(1234)
    ref = torch.nn.init.orthogonal_(torch.empty(shape), 1.5)
    after_ref = torch.rand(3)
    assert torch.equal(ours, ref)
    assert torch.equal(after_ours, after_ref)  # same amount of the global stream consumed


def test_orthogonal_registered_and_returns_same_tensor():
    assert type(get_scheme("orthogonal", gain=2.0)) is Orthogonal
    p = torch.nn.Parameter(torch.empty(4, 6))
    out = Orthogonal()(p, generator=_gen(0))
    assert out is p
    assert p.requires_grad and p.grad is None


# -- orthogonality ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_orthogonal_is_orthogonal_float32(shape, gain):
    w = Orthogonal(gain)(torch.empty(shape), generator=_gen(3))
    assert _ortho_error(w, gain) < 1e-5 * max(1.0, gain**2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (12, 5), (8, 4, 3, 3)])
def test_orthogonal_half_precision_is_float32_result_cast(dtype, shape):
    w = Orthogonal(1.0)(torch.empty(shape, dtype=dtype), generator=_gen(5))
    w32 = Orthogonal(1.0)(torch.empty(shape, dtype=torch.float32), generator=_gen(5))
    assert w.dtype == dtype
    assert torch.equal(w, w32.to(dtype))
    assert _ortho_error(w, 1.0) < (1e-2 if dtype == torch.float16 else 5e-2)


def test_orthogonal_half_with_gain_equals_float32_cast():
    w = Orthogonal(0.7)(torch.empty(9, 5, dtype=torch.bfloat16), generator=_gen(2))
    w32 = torch.nn.init.orthogonal_(torch.empty(9, 5), 0.7, generator=_gen(2))
    assert torch.equal(w, w32.to(torch.bfloat16))


def test_orthogonal_packed_lstm_blocks_each_orthogonal():
    fans = Fans(
        fan_in=20,
        fan_out=20,
        blocks=(Block("i", 0, 20), Block("f", 20, 40), Block("g", 40, 60), Block("o", 60, 80)),
    )
    w = Orthogonal(1.0)(torch.empty(80, 20), fans, generator=_gen(7))
    for k in range(4):
        blk = w[20 * k : 20 * (k + 1)]
        assert _ortho_error(blk, 1.0) < 1e-5
    # the whole [80, 20] is not orthogonal (its 20 columns would have norm 1, they have norm 2)
    assert w.norm(dim=0).sub(2.0).abs().max().item() < 1e-5
    # block by block = four separate [20, 20] calls on the same generator, in order
    g = _gen(7)
    parts = [torch.nn.init.orthogonal_(torch.empty(20, 20), generator=g) for _ in range(4)]
    assert torch.equal(w, torch.cat(parts))


def test_orthogonal_blocks_along_dim1():
    fans = Fans(fan_in=4, fan_out=6, blocks=(Block("a", 0, 4, dim=1), Block("b", 4, 8, dim=1)))
    w = Orthogonal(1.0)(torch.empty(6, 8), fans, generator=_gen(9))
    for blk in (w[:, :4], w[:, 4:]):
        assert _ortho_error(blk, 1.0) < 1e-5


def test_orthogonal_channels_last_same_values():
    shape = (16, 8, 3, 3)
    a = Orthogonal(1.0)(torch.empty(shape), generator=_gen(4))
    t = torch.empty(shape).to(memory_format=torch.channels_last)
    b = Orthogonal(1.0)(t, generator=_gen(4))
    assert b is t and b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)


def test_orthogonal_meta_and_empty_are_noops():
    m = torch.empty(4, 4, device="meta")
    assert Orthogonal()(m) is m
    e = torch.empty(0, 5)
    assert Orthogonal()(e, generator=_gen(0)) is e


# -- bad input ---------------------------------------------------------------------------
def test_orthogonal_rejects_1d():
    t = torch.full((5,), 7.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        Orthogonal()(t)
    assert torch.equal(t, torch.full((5,), 7.0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "1", True])
def test_orthogonal_rejects_non_finite_gain(bad):
    with pytest.raises(ValueError, match="gain"):
        Orthogonal(bad)


def test_orthogonal_negative_gain_allowed():
    w = Orthogonal(-1.0)(torch.empty(4, 4), generator=_gen(1))
    ref = torch.nn.init.orthogonal_(torch.empty(4, 4), -1.0, generator=_gen(1))
    assert torch.equal(w, ref)


def test_orthogonal_rejects_integer_tensor_unchanged():
    t = torch.arange(12).reshape(3, 4)
    with pytest.raises(TypeError, match="floating-point"):
        Orthogonal()(t, generator=_gen(0))
    assert torch.equal(t, torch.arange(12).reshape(3, 4))


# -- delta-orthogonal --------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(6, 4, 3), (8, 8, 3, 3), (5, 3, 3, 5), (4, 4, 3, 3, 3), (4, 2, 4, 4)]
)
def test_delta_orthogonal_structure(shape):
    gain = 1.3
    w = DeltaOrthogonal(gain)(torch.empty(shape), generator=_gen(21))
    centre = tuple(k // 2 for k in shape[2:])
    c = w[(slice(None), slice(None), *centre)]
    mask = torch.ones(shape, dtype=torch.bool)
    mask[(slice(None), slice(None), *centre)] = False
    assert torch.count_nonzero(w[mask]) == 0
    # out >= in: the centre has orthonormal columns (times gain)
    ctc = c.double().T @ c.double()
    assert (ctc - gain**2 * torch.eye(shape[1], dtype=torch.float64)).abs().max() < 1e-5
    # drawn exactly like orthogonal_ on an [out, in] tensor
    ref = torch.nn.init.orthogonal_(torch.empty(shape[:2]), gain, generator=_gen(21))
    assert torch.equal(c, ref)


def test_delta_orthogonal_preserves_norm_circular_padding():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular", bias=False)
    DeltaOrthogonal()(conv.weight, generator=_gen(8))
    x = torch.randn(4, 16, 10, 10, generator=_gen(99))
    with torch.no_grad():
        y = conv(x)
    assert y.shape == x.shape
    rel = ((y.norm() - x.norm()).abs() / x.norm()).item()
    assert rel < 1e-5
    # per sample as well
    per = (y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1) - 1).abs().max().item()
    assert per < 1e-5


def test_delta_orthogonal_conv1d_functional_isometry():
    w = DeltaOrthogonal(2.0)(torch.empty(12, 8, 5), generator=_gen(3))
    x = torch.randn(3, 8, 20, generator=_gen(4))
    y = F.conv1d(F.pad(x, (2, 2), mode="circular"), w)
    assert abs(y.norm().item() / x.norm().item() - 2.0) < 1e-5


def test_delta_orthogonal_groups_from_fans():
    fans = Fans(fan_in=4 * 9, fan_out=4 * 9, attrs=(("groups", 2),))
    w = DeltaOrthogonal()(torch.empty(8, 4, 3, 3), fans, generator=_gen(5))
    c = w[:, :, 1, 1]
    for g in range(2):
        blk = c[4 * g : 4 * (g + 1)]
        assert (blk.T @ blk - torch.eye(4)).abs().max() < 1e-5
    # grouped conv is norm-preserving
    x = torch.randn(2, 8, 6, 6, generator=_gen(6))
    y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), w, groups=2)
    assert abs(y.norm().item() / x.norm().item() - 1.0) < 1e-5


def test_delta_orthogonal_bad_input_before_writing():
    t = torch.full((4, 8, 3, 3), 5.0)
    with pytest.raises(ValueError, match="in_channels <= out_channels"):
        DeltaOrthogonal()(t)
    assert torch.equal(t, torch.full((4, 8, 3, 3), 5.0))
    with pytest.raises(ValueError, match="dimensions"):
        DeltaOrthogonal()(torch.empty(4, 4))
    t = torch.full((8, 6, 3), 5.0)
    with pytest.raises(ValueError, match="groups"):  # 6 inputs per group > 8/2 outputs
        DeltaOrthogonal()(t, Fans(18, 12, attrs=(("groups", 2),)))
    assert torch.equal(t, torch.full((8, 6, 3), 5.0))
    with pytest.raises(ValueError, match="gain"):
        DeltaOrthogonal(float("nan"))


def test_delta_orthogonal_channels_last_and_half():
    a = DeltaOrthogonal()(torch.empty(8, 8, 3, 3), generator=_gen(1))
    b = DeltaOrthogonal()(
        torch.empty(8, 8, 3, 3).to(memory_format=torch.channels_last), generator=_gen(1)
    )
    assert torch.equal(a, b)
    h = DeltaOrthogonal()(torch.empty(8, 8, 3, 3, dtype=torch.float16), generator=_gen(1))
    assert torch.equal(h, a.half())


# -- config ------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [Orthogonal(), Orthogonal(-0.5), DeltaOrthogonal(1.4)])
def test_config_round_trip(s):
    cfg = s.to_config()
    text = json.dumps(cfg)
    assert Scheme.from_config(json.loads(text)) == s
    assert type(s).from_config(cfg) == s
    assert cfg["name"] == s.name


def test_keyed_orthogonal_does_not_depend_on_the_thread_count() -> None:
    """LAPACK's QR rounds differently on one and two threads (checked first, so this test
    cannot pass for want of a difference); keyed values must not."""
    import initlab

    a = torch.randn(128, 128, generator=torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        q1 = torch.linalg.qr(a)[0]
        w1 = torch.nn.Linear(128, 128, bias=False)
        initlab.initialize(w1, "orthogonal", seed=3)
        torch.set_num_threads(2)
        q2 = torch.linalg.qr(a)[0]
        w2 = torch.nn.Linear(128, 128, bias=False)
        initlab.initialize(w2, "orthogonal", seed=3)
        assert torch.get_num_threads() == 2  # restored after the fill
    finally:
        torch.set_num_threads(before)
    if torch.equal(q1, q2):
        pytest.skip("this machine's QR gives the same bits on one and two threads")
    assert torch.equal(w1.weight, w2.weight)
