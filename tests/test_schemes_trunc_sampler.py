"""initlab.sampling.standard_trunc_normal_: exact N(0, 1) | [a, b], checked statistically.

Every statistical check uses a fixed seed and a tolerance of 6 standard errors (two-sided
p ≈ 2e-9 for a correct sampler), the standard errors estimated from the sample through the
influence function of each statistic (mean, variance, kurtosis). The KS check uses the
asymptotic critical value 1.95/sqrt(n) (α = 0.001).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initlab.sampling import standard_trunc_normal_, trunc_normal_method

INF = math.inf
INTERVALS = [(-2.0, 2.0), (0.0, INF), (-INF, -1.0), (1.0, 3.0), (3.0, 4.0), (-0.1, 0.1), (5.0, 6.0)]
EXTREME = [(40.0, 40.5), (-INF, -40.0), (31.0, INF), (1.0, 1.001), (5.0, 5.0001), (-1e-6, 1e-6)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SQRT2 = math.sqrt(2.0)


# ------------------------------------------------------------------ the analytic distribution


def _scaled(a: float, b: float):
    """For 0 ≤ a < b: φ and the survival function S, both times exp(a²/2) (no underflow)."""

    def pdf(x: float) -> float:
        return 0.0 if x == INF else math.exp(-0.5 * (x - a) * (x + a)) / math.sqrt(2 * math.pi)

    def sf(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        scaled = 0.5 * torch.special.erfcx(x / SQRT2) * torch.exp(-0.5 * (x - a) * (x + a))
        return torch.where(torch.isinf(x), torch.zeros_like(x), scaled)

    return pdf, sf


def _raw_moments(a: float, b: float, kmax: int = 4) -> list[float]:
    """E[X^k], k ≤ kmax: m_k = (k-1)·m_{k-2} + (a^{k-1}φ(a) − b^{k-1}φ(b)) / Z."""
    if a + b > 0 and a < 0:  # contains 0, mostly positive: no scaling needed, but mirror anyway
        return [m * (-1) ** k for k, m in enumerate(_raw_moments(-b, -a, kmax))]
    if b <= 0:  # lower tail: mirror to the upper tail, odd moments change sign
        return [m * (-1) ** k for k, m in enumerate(_raw_moments(-b, -a, kmax))]
    if a >= 0:
        pdf, sf = _scaled(a, b)
        z = float(sf(a) - sf(b))
    else:  # a < 0 < b, a + b ≤ 0

        def pdf(x: float) -> float:
            return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

        z = 1.0 - 0.5 * math.erfc(b / SQRT2) - 0.5 * math.erfc(-a / SQRT2)

    def term(x: float, k: int) -> float:
        return 0.0 if math.isinf(x) else x ** (k - 1) * pdf(x)

    m = [1.0, (pdf(a) - pdf(b)) / z]
    for k in range(2, kmax + 1):
        m.append((k - 1) * m[k - 2] + (term(a, k) - term(b, k)) / z)
    return m


def _expected_stats(a: float, b: float) -> tuple[float, float, float]:
    """(mean, variance, kurtosis). Finite intervals: 200-node Gauss–Legendre on [a, b] of the
    central moments (exact to ~1e-15 for this smooth integrand, and free of the cancellation
    that the raw-moment recursion suffers on narrow intervals); otherwise the recursion."""
    if math.isinf(a) or math.isinf(b):
        m = _raw_moments(a, b)
        mu = m[1]
        var = m[2] - mu * mu
        mu4 = m[4] - 4 * mu * m[3] + 6 * mu * mu * m[2] - 3 * mu**4
        return mu, var, mu4 / var**2
    nodes, weights = np.polynomial.legendre.leggauss(200)
    x = 0.5 * (b - a) * nodes + 0.5 * (a + b)
    c = 0.0 if a < 0 < b else min(abs(a), abs(b))  # density relative to its peak on [a, b]
    w = weights * np.exp(-0.5 * (np.abs(x) - c) * (np.abs(x) + c))
    w /= w.sum()
    mu = float(np.dot(w, x))
    d = x - mu
    var = float(np.dot(w, d**2))
    return mu, var, float(np.dot(w, d**4)) / var**2


def _cdf(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Truncated CDF at x (float64), accurate in either tail."""
    if b <= 0:
        return 1.0 - _cdf(-x, -b, -a)
    if a >= 0:
        _, sf = _scaled(a, b)
        return (sf(a) - sf(x)) / (sf(a) - sf(b))
    phi = 0.5 * torch.special.erfc(-x / SQRT2)
    lo, hi = 0.5 * math.erfc(-a / SQRT2), 1.0 - 0.5 * math.erfc(b / SQRT2)
    return (phi - lo) / (hi - lo)


def _sample(a, b, n, dtype=torch.float32, seed=0, device="cpu"):
    g = torch.Generator(device=device).manual_seed(seed)
    t = torch.empty(n, dtype=dtype, device=device)
    out = standard_trunc_normal_(t, a, b, generator=g)
    assert out is t
    return t.double().cpu()


def _check_moments(x: torch.Tensor, a: float, b: float) -> None:
    n = x.numel()
    mu_e, var_e, kurt_e = _expected_stats(a, b)
    mu = x.mean()
    d = x - mu
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    se_mean = float(m2.sqrt()) / math.sqrt(n)
    se_var = float((d**2 - m2).std()) / math.sqrt(n)
    infl_kurt = (d**4 - m4 - 4 * m3 * d) / m2**2 - 2 * m4 / m2**3 * (d**2 - m2)
    se_kurt = float(infl_kurt.std()) / math.sqrt(n)
    kurt = float(m4 / m2**2)
    assert abs(float(mu) - mu_e) < 6 * se_mean, (float(mu), mu_e, se_mean)
    assert abs(float(m2) - var_e) < 6 * se_var, (float(m2), var_e, se_var)
    assert abs(kurt - kurt_e) < 6 * se_kurt, (kurt, kurt_e, se_kurt)


def test_analytic_reference_sanity():
    # The ±2 std truncated normal has std 0.87962566103423978 (references.md).
    mu, var, _ = _expected_stats(-2.0, 2.0)
    assert abs(mu) < 1e-15 and math.sqrt(var) == pytest.approx(0.87962566103423978, rel=1e-14)
    assert _expected_stats(-INF, INF)[1:] == pytest.approx((1.0, 3.0), rel=1e-14)
    assert _expected_stats(0.0, INF)[0] == pytest.approx(math.sqrt(2 / math.pi), rel=1e-14)
    assert _expected_stats(-0.1, 0.1)[2] == pytest.approx(1.8, rel=1e-2)  # nearly uniform
    assert _expected_stats(40.0, INF)[0] == pytest.approx(40.0 + 1 / 40.0, rel=1e-6)


# ------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("a", "b"), INTERVALS)
def test_moments(a, b, dtype):
    x = _sample(a, b, 1 << 21, dtype=dtype, seed=hash((a, b)) % 1000)
    assert bool(((x >= a) & (x <= b)).all())
    _check_moments(x, a, b)


@pytest.mark.parametrize(("a", "b"), EXTREME)
def test_moments_extreme(a, b):
    x = _sample(a, b, 1 << 20, dtype=torch.float64, seed=7)
    assert bool(((x >= a) & (x <= b)).all())
    _check_moments(x, a, b)


@pytest.mark.parametrize(("a", "b"), [*INTERVALS, (40.0, 40.5), (-INF, INF)])
def test_ks(a, b):
    n = 1 << 20
    x = _sample(a, b, n, seed=11).sort().values
    f = _cdf(x, a, b)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    d = max(float((i / n - f).max()), float((f - (i - 1) / n).max()))
    assert d < 1.95 / math.sqrt(n), d


# ---------------------------------------------------------------------- bounds and dtypes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize(("a", "b"), [*INTERVALS, *EXTREME[:3], (-INF, INF), (0.1, 0.3)])
def test_bounds_every_dtype(a, b, dtype, device):
    if dtype in (torch.float16,) and a > 6e4:
        pytest.skip("no float16 value there")
    x = _sample(a, b, 300_000, dtype=dtype, seed=3, device=device)  # > one work chunk
    assert bool(torch.isfinite(x).all())
    assert bool(((x >= a) & (x <= b)).all()), (float(x.min()), float(x.max()))
    assert x.unique().numel() > 1  # not collapsed onto a bound
    if dtype != torch.float64 or (not math.isinf(a) and not math.isinf(b)):
        expected = _expected_stats(a, b)[0]
        assert abs(float(x.mean()) - expected) < 0.05 * max(1.0, abs(expected))


def test_half_precision_without_representable_value():
    with pytest.raises(ValueError, match=r"no torch\.bfloat16 value"):
        standard_trunc_normal_(torch.empty(4, dtype=torch.bfloat16), 5.001, 5.002)
    with pytest.raises(ValueError, match=r"no torch\.float16 value"):
        standard_trunc_normal_(torch.empty(4, dtype=torch.float16), 7e4, INF)
    x = standard_trunc_normal_(torch.empty(1000, dtype=torch.bfloat16), 5.0, 5.0001)
    assert bool((x == 5.0).all())  # the only bfloat16 value inside


def test_method_selection():
    assert trunc_normal_method(-2, 2) == "erfinv32"
    assert trunc_normal_method(-2, 2, torch.bfloat16) == "erfinv32"
    assert trunc_normal_method(-2, 2, torch.float64) == "erfinv64"
    assert trunc_normal_method(-3, 3) == "erfinv32"
    assert trunc_normal_method(-0.1, 0.1) == "erfinv32"
    assert trunc_normal_method(-5, 5) == "erfinv64"
    assert trunc_normal_method(-1, INF) == "erfinv64"
    assert trunc_normal_method(1, 1.001) == "ndtri64"  # too few float32 uniforms
    assert trunc_normal_method(3, 4) == "ndtri64"
    assert trunc_normal_method(0, INF) == "ndtri64"
    assert trunc_normal_method(-INF, -1) == "ndtri64"
    assert trunc_normal_method(40, 40.5) == "tail"
    assert trunc_normal_method(-INF, -31) == "tail"


def test_tiny_std_scaling_has_no_outliers():
    t = torch.empty(1 << 22)
    standard_trunc_normal_(t, -2.0, 2.0, torch.Generator().manual_seed(0))
    w = t * 0.002
    assert float(w.abs().max()) <= 2 * 0.002 * (1 + 1e-6)
    assert float(w.std()) == pytest.approx(0.002 * 0.87962566103423978, rel=2e-3)


# ------------------------------------------------------------------------ reproducibility


@pytest.mark.parametrize(("a", "b"), [(-2.0, 2.0), (0.0, INF), (5.0, 6.0), (40.0, 40.5)])
def test_same_seed_same_values(a, b):
    x1, x2 = _sample(a, b, 100_000, seed=5), _sample(a, b, 100_000, seed=5)
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, _sample(a, b, 100_000, seed=6))


def test_global_generator():
    torch.manual_seed(123)
    x1 = standard_trunc_normal_(torch.empty(1000), -2, 2)
    torch.manual_seed(123)
    x2 = standard_trunc_normal_(torch.empty(1000), -2, 2)
    assert torch.equal(x1, x2)


def test_layouts_and_autograd():
    g = torch.Generator().manual_seed(0)
    w = torch.empty(64, 32).t()  # non-contiguous
    assert not w.is_contiguous()
    standard_trunc_normal_(w, -1.0, 0.5, g)
    assert bool(((w >= -1.0) & (w <= 0.5)).all()) and w.std() > 0.2
    p = torch.nn.Parameter(torch.empty(100, 10))
    standard_trunc_normal_(p, -2, 2, g)  # a leaf requiring grad is filled under no_grad
    assert p.requires_grad and bool((p.abs() <= 2).all())
    assert standard_trunc_normal_(torch.empty(0), -2, 2).numel() == 0
    assert standard_trunc_normal_(torch.empty(3, device="meta"), -2, 2).is_meta


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("a", "b"), [(2.0, 2.0), (3.0, -1.0), (math.nan, 1.0), (0.0, math.nan), (INF, INF)]
)
def test_bad_bounds(a, b):
    with pytest.raises(ValueError):
        standard_trunc_normal_(torch.empty(5), a, b)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.complex64])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="floating-point"):
        standard_trunc_normal_(torch.zeros(5, dtype=dtype), -2, 2)


def test_bad_bound_type():
    with pytest.raises(TypeError):
        standard_trunc_normal_(torch.empty(5), "a", 2)  # type: ignore[arg-type]
