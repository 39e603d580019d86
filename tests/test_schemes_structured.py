"""Identity, eye, dirac, ZerO, sparse and scaled schemes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from initlab.fans import Block, Fans
from initlab.schemes.base import Scheme, get_scheme, resolve_name
from initlab.schemes.orthogonal import Orthogonal
from initlab.schemes.structured import (
    Dirac,
    Eye,
    Identity,
    Scaled,
    Sparse,
    ZerO,
    fixup_scale,
    zero_matrix,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sylvester(p: int) -> torch.Tensor:
    """Sylvester Hadamard matrix of order p (a power of two), built by the recursion."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < p:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def _hadamard(p: int) -> torch.Tensor:
    try:
        from scipy.linalg import hadamard
    except ImportError:  # pragma: no cover
        return _sylvester(p)
    return torch.from_numpy(hadamard(p).astype("float64"))


# -- identity / eye ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (1, 1)])
def test_eye_bit_identical_to_torch(shape):
    assert torch.equal(Eye()(torch.empty(shape)), torch.nn.init.eye_(torch.empty(shape)))
    p = torch.nn.Parameter(torch.empty(shape))
    assert Eye()(p) is p and p.requires_grad
    assert torch.equal(p, torch.eye(*shape))


def test_eye_ignores_blocks_identity_uses_them():
    fans = Fans(2, 2, blocks=(Block("a", 0, 2), Block("b", 2, 4)))
    e = Eye()(torch.empty(4, 2), fans)
    assert torch.equal(e, torch.eye(4, 2))
    i = Identity(0.5)(torch.empty(4, 2), fans)
    assert torch.equal(i, torch.cat([0.5 * torch.eye(2), 0.5 * torch.eye(2)]))


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.5, -1.0])
def test_identity_values(shape, gain):
    w = Identity(gain)(torch.full(shape, 9.0))
    assert torch.equal(w, gain * torch.eye(*shape))


def test_identity_eye_bad_input():
    for s in (Identity(), Eye()):
        t = torch.full((2, 3, 3), 4.0)
        with pytest.raises(ValueError, match="2 dimensions"):
            s(t)
        assert torch.equal(t, torch.full((2, 3, 3), 4.0))
    with pytest.raises(ValueError, match="gain"):
        Identity(float("inf"))


# -- dirac -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,groups",
    [
        ((4, 4, 3), 1),
        ((6, 4, 5), 2),
        ((3, 16, 5, 5), 1),
        ((8, 4, 3, 3), 2),
        ((6, 2, 3, 4), 3),
        ((4, 3, 3, 3, 3), 1),
        ((6, 2, 2, 3, 4), 2),
        ((3, 24, 5, 5), 3),
    ],
)
def test_dirac_bit_identical_to_torch(shape, groups):
    ours = Dirac(groups)(torch.full(shape, 3.0))
    ref = torch.nn.init.dirac_(torch.full(shape, 3.0), groups)
    assert torch.equal(ours, ref)


def test_dirac_identity_conv():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
    Dirac()(conv.weight)
    x = torch.randn(2, 8, 7, 7, generator=_gen(0))
    with torch.no_grad():
        assert torch.equal(conv(x), x)


def test_dirac_channels_last():
    t = torch.empty(8, 4, 3, 3).to(memory_format=torch.channels_last)
    Dirac(2)(t)
    assert torch.equal(t, torch.nn.init.dirac_(torch.empty(8, 4, 3, 3), 2))


def test_dirac_bad_input():
    t = torch.full((5, 4, 3, 3), 1.5)
    with pytest.raises(ValueError, match="divisible by groups"):
        Dirac(2)(t)
    assert torch.equal(t, torch.full((5, 4, 3, 3), 1.5))
    with pytest.raises(ValueError, match="3 or 4 or 5 dimensions"):
        Dirac()(torch.empty(4, 4))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="groups"):
            Dirac(bad)


# -- ZerO --------------------------------------------------------------------------------
def test_zero_registered_with_alias():
    assert resolve_name("zer_o") == "zero_hadamard"
    assert type(get_scheme("zer_o")) is ZerO
    assert ZerO.deterministic


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (1, 4)])
def test_zero_identity_when_m_le_n(shape):
    assert torch.equal(ZerO()(torch.full(shape, 7.0)), torch.eye(*shape))


def test_zero_small_case_by_hand():
    # m=3 > n=2: c = 2, p = 4, H_4 rows 0..2, cols 0..1, divided by 2^(2/2) = 2
    w = ZerO()(torch.empty(3, 2, dtype=torch.float64))
    expected = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64) / 2
    assert torch.equal(w, expected)
    # m=5 > n=1: c = 3, p = 8, first column of H_8 (all ones) / 2^(3/2)
    w = ZerO()(torch.empty(5, 1, dtype=torch.float64))
    assert torch.allclose(
        w, torch.full((5, 1), 1 / math.sqrt(8), dtype=torch.float64), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize("m,n", [(3, 2), (5, 3), (8, 3), (9, 8), (17, 4), (64, 63), (100, 30)])
def test_zero_matches_formula_with_hadamard(m, n):
    c = math.ceil(math.log2(m))
    p = 2**c
    formula = (
        torch.eye(m, p, dtype=torch.float64)
        @ (_hadamard(p) / 2 ** (c / 2))
        @ torch.eye(p, n, dtype=torch.float64)
    )
    assert torch.allclose(zero_matrix(m, n), formula, rtol=0, atol=1e-15)
    assert torch.equal(_hadamard(p), _sylvester(p))
    w = ZerO()(torch.empty(m, n))
    assert torch.allclose(w.double(), formula, rtol=0, atol=1e-7)


@pytest.mark.parametrize("m", [2, 3, 5, 7, 8, 12, 16, 33])
def test_zero_expanding_properties(m):
    c = math.ceil(math.log2(m))
    p = 2**c
    for n in range(1, m):
        w = zero_matrix(m, n)
        assert torch.equal(w.abs(), torch.full((m, n), 2.0 ** (-c / 2), dtype=torch.float64))
        norms = w.norm(dim=0)
        assert torch.allclose(norms, torch.full((n,), math.sqrt(m / p), dtype=torch.float64))
        assert torch.linalg.matrix_rank(w).item() == n  # injective
        if m == p:  # power of two: orthonormal columns
            assert torch.allclose(w.T @ w, torch.eye(n, dtype=torch.float64), atol=1e-12)
    # not orthogonal in general: m=3, n=2 has column inner product 1/4
    if m == 3:
        w = zero_matrix(3, 2)
        assert (w[:, 0] @ w[:, 1]).item() == pytest.approx(0.25)


def test_zero_conv_centre_tap():
    w = ZerO()(torch.full((6, 3, 3, 3), 2.0))
    centre = w[:, :, 1, 1]
    assert torch.allclose(centre.double(), zero_matrix(6, 3), atol=1e-7)
    w[:, :, 1, 1] = 0
    assert torch.count_nonzero(w) == 0
    w = ZerO()(torch.empty(4, 4, 5))
    assert torch.equal(w[:, :, 2], torch.eye(4))


def test_zero_packed_blocks():
    fans = Fans(3, 6, blocks=(Block("q", 0, 6), Block("k", 6, 12)))
    w = ZerO()(torch.empty(12, 3), fans)
    block = zero_matrix(6, 3).float()
    assert torch.equal(w, torch.cat([block, block]))


def test_zero_bad_input():
    t = torch.full((5,), 1.0)
    with pytest.raises(ValueError):
        ZerO()(t)
    assert torch.equal(t, torch.full((5,), 1.0))


# -- sparse ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,sparsity,std",
    [((10, 6), 0.1, 0.01), ((7, 9), 0.5, 1.0), ((5, 3), 0.0, 0.2), ((4, 4), 1.0, 0.1)],
)
def test_sparse_bit_identical_to_torch_global_rng(shape, sparsity, std):
    torch.manual_seed(42)
    ours = Sparse(sparsity, std)(torch.empty(shape))
    after_ours = torch.rand(2)
    torch.manual_seed(42)
    ref = torch.nn.init.sparse_(torch.empty(shape), sparsity, std)
    after_ref = torch.rand(2)
    assert torch.equal(ours, ref)
    assert torch.equal(after_ours, after_ref)


def test_sparse_zeros_per_column_and_generator_only():
    rows, cols, s = 20, 8, 0.3
    k = math.ceil(s * rows)
    torch.manual_seed(0)
    a = Sparse(s, 1.0)(torch.empty(rows, cols), generator=_gen(5))
    torch.manual_seed(1)  # different global state: no effect with a generator
    b = Sparse(s, 1.0)(torch.empty(rows, cols), generator=_gen(5))
    assert torch.equal(a, b)
    assert ((a == 0).sum(dim=0) == k).all()
    # the values are the generator's normal draw with the mask applied
    ref = torch.empty(rows, cols).normal_(0.0, 1.0, generator=_gen(5))
    assert torch.equal(a[a != 0], ref[a != 0])


def test_sparse_bad_input_before_writing():
    t = torch.full((3, 4, 5), 2.0)
    with pytest.raises(ValueError, match="2 dimensions"):
        Sparse(0.5)(t)
    assert torch.equal(t, torch.full((3, 4, 5), 2.0))
    for bad in (-0.1, 1.1, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="sparsity"):
            Sparse(bad)
    with pytest.raises(ValueError, match="std"):
        Sparse(0.1, -1.0)


# -- scaled / fixup ----------------------------------------------------------------------
def test_fixup_scale():
    assert fixup_scale(16, 2) == pytest.approx(16**-0.5)
    assert fixup_scale(8, 3) == pytest.approx(8**-0.25)
    assert fixup_scale(1, 2) == 1.0
    for args in ((0, 2), (4, 1), (4, 2.5), (True, 2), (-3, 3)):
        with pytest.raises(ValueError):
            fixup_scale(*args)


def test_scaled_values_and_properties():
    s = Scaled(Orthogonal(), 0.25)
    assert s.uses_fans and not s.deterministic
    w = s(torch.empty(6, 4), generator=_gen(3))
    ref = torch.nn.init.orthogonal_(torch.empty(6, 4), generator=_gen(3)) * 0.25
    assert torch.equal(w, ref)
    z = Scaled(ZerO(), 2.0)
    assert z.deterministic and z.ndims == ZerO.ndims
    assert torch.equal(z(torch.empty(3, 3)), 2 * torch.eye(3))


def test_scaled_packed_blocks_follow_base():
    fans = Fans(5, 5, blocks=(Block("r", 0, 5), Block("z", 5, 10), Block("n", 10, 15)))
    w = Scaled(Orthogonal(), 0.5)(torch.empty(15, 5), fans, generator=_gen(2))
    for k in range(3):
        blk = w[5 * k : 5 * (k + 1)]
        assert (blk.T @ blk - 0.25 * torch.eye(5)).abs().max() < 1e-6
    direct = Orthogonal()(torch.empty(15, 5), fans, generator=_gen(2)) * 0.5
    assert torch.equal(w, direct)


def test_scaled_channels_last_meta_parameter():
    a = Scaled(Orthogonal(), -3.0)(torch.empty(8, 4, 3, 3), generator=_gen(1))
    t = torch.empty(8, 4, 3, 3).to(memory_format=torch.channels_last)
    b = Scaled(Orthogonal(), -3.0)(t, generator=_gen(1))
    assert b is t and torch.equal(a, b)
    m = torch.empty(4, 4, device="meta")
    assert Scaled(Orthogonal(), 2.0)(m) is m
    p = torch.nn.Parameter(torch.empty(4, 4))
    Scaled(Identity(), 3.0)(p)
    assert p.requires_grad and torch.equal(p, 3 * torch.eye(4))


def test_scaled_bad_input():
    for bad in (float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="factor"):
            Scaled(Orthogonal(), bad)
    with pytest.raises(ValueError, match="base"):
        Scaled(42, 1.0)
    t = torch.full((5,), 1.0)
    with pytest.raises(ValueError):  # the base's shape check
        Scaled(Orthogonal(), 2.0)(t)
    assert torch.equal(t, torch.full((5,), 1.0))


def test_scaled_accepts_name_or_config():
    assert Scaled("orthogonal", 2.0) == Scaled(Orthogonal(), 2.0)
    assert Scaled({"name": "orthogonal", "gain": 0.5}, 2.0) == Scaled(Orthogonal(0.5), 2.0)


def test_scaled_config_nests():
    s = Scaled(Scaled(Orthogonal(0.5), 3.0), fixup_scale(10, 2))
    cfg = s.to_config()
    assert cfg["name"] == "scaled"
    inner = {"name": "orthogonal", "gain": 0.5}
    assert cfg["base"] == {"name": "scaled", "base": inner, "factor": 3.0}
    assert Scheme.from_config(json.loads(json.dumps(cfg))) == s


# -- config round trip for every scheme here ----------------------------------------------
@pytest.mark.parametrize(
    "s",
    [
        Identity(),
        Identity(-2.0),
        Eye(),
        Dirac(),
        Dirac(3),
        ZerO(),
        Sparse(0.25),
        Sparse(0.0, 0.5),
        Scaled(Orthogonal(), 0.5),
        Scaled(Dirac(2), -1.0),
    ],
)
def test_config_round_trip(s):
    cfg = s.to_config()
    back = Scheme.from_config(json.loads(json.dumps(cfg)))
    assert back == s and type(back) is type(s)
    assert type(s).from_config(cfg) == s
    assert get_scheme(cfg) == s
