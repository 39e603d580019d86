"""Schemes that need no fans: uniform, normal, truncated normal, constants."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import warnings

import numpy as np
import torch
from torch import Tensor

from ..fans import Fans
from ..rng import RandomSource, TorchSource
from .base import Scheme, as_real, check_finite, check_nonneg, check_positive, register_scheme


@register_scheme
@dataclasses.dataclass(frozen=True)
class Uniform(Scheme):
    """Values drawn from U(a, b), as ``torch.nn.init.uniform_`` (bit-identical to it).

    Args:
        a: the lower bound (finite).
        b: the upper bound (finite, >= a).

    Example:
        >>> s = Uniform(-1.0, 1.0)
        >>> s(torch.empty(2, 3), generator=torch.Generator().manual_seed(0))
        tensor([[-0.0075,  0.5364, -0.8230],
                [-0.7359, -0.3852,  0.2682]])
        >>> s.to_config(), round(s.target_std(None), 4)  # std = (b - a) / sqrt(12)
        ({'name': 'uniform', 'a': -1.0, 'b': 1.0}, 0.5774)
    """

    name = "uniform"
    elementwise = True
    formula = "W ~ U(a, b)"
    paper = "-"
    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", check_finite(self.name, "a", self.a))
        object.__setattr__(self, "b", check_finite(self.name, "b", self.b))
        if self.a > self.b:
            raise ValueError(f"uniform: need a <= b, got a={self.a}, b={self.b}; swap them")

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.uniform_(t, self.a, self.b)

    def target_std(self, fans: Fans | None) -> float:
        return (self.b - self.a) / math.sqrt(12.0)


@register_scheme
@dataclasses.dataclass(frozen=True)
class Normal(Scheme):
    """Values drawn from N(mean, std²), as ``torch.nn.init.normal_`` (bit-identical to it).

    Args:
        mean: the mean (finite).
        std: the standard deviation (finite, >= 0).

    Example:
        >>> w = Normal(0.0, 0.02)(torch.empty(100, 100), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 3)
        0.02
        >>> Normal(0.0, 0.02).to_config()
        {'name': 'normal', 'mean': 0.0, 'std': 0.02}
    """

    name = "normal"
    elementwise = True
    formula = "W ~ N(mean, std^2)"
    paper = "-"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_finite(self.name, "mean", self.mean))
        object.__setattr__(self, "std", check_nonneg(self.name, "std", self.std))

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.normal_(t, self.mean, self.std)

    def target_std(self, fans: Fans | None) -> float:
        return float(self.std)


#: std of a standard normal truncated to [-2, 2]; dividing by it restores the intended variance.
TRUNC_STD_2 = 0.87962566103423978


#: the truncated density is negligible (< e^-45 of its peak) beyond this log-density drop
_TAIL_DROP = 45.0
_PANELS = 24


@functools.lru_cache(maxsize=1)
def _gl_rule(nodes: int = 20) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(nodes)
    return 0.5 * (x + 1.0), 0.5 * w  # on [0, 1]


def _trunc_moments_std(a: float, b: float) -> float | None:
    """Standard deviation of N(0, 1) truncated to [a, b] (for reporting the achieved target).

    Closed forms in Phi differences cancel catastrophically in far tails ([10, 11]: the mass
    underflows relative to 1) and for narrow intervals ([4, 4.001]: var ~ width²/12 is the
    difference of numbers ~16). Instead the interval is mirrored so that its point nearest 0
    (the mode m) is at its low end or inside it, cut where the density has fallen by e^-45,
    and the centred variance is integrated by composite Gauss-Legendre in y = x - m, with the
    log-density -(y·(m + y/2)) relative to the mode (no underflow, no cancellation).
    Accurate to ~1e-12 relative; None when not computable.
    """
    try:
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b) or not a < b:
            return None
        if a + b < 0:  # std is symmetric: put the mode at the low end or inside
            a, b = -b, -a
        m = max(a, 0.0)  # the mode of the truncated density (b > m since a + b >= 0)
        reach = 2.0 * _TAIL_DROP / (math.hypot(m, math.sqrt(2.0 * _TAIL_DROP)) + m)
        lo = max(a - m, -reach)  # only < 0 when m = 0
        hi = min(b - m, reach)
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            return None
        u, w = _gl_rule()
        edges = np.linspace(lo, hi, _PANELS + 1)
        width = np.diff(edges)[:, None]
        y = (edges[:-1, None] + width * u[None, :]).ravel()
        wt = (width * w[None, :]).ravel() * np.exp(-(y * (m + 0.5 * y)))
        mass = wt.sum()
        if not (math.isfinite(mass) and mass > 0):
            return None
        mean = float((wt * y).sum() / mass)
        var = float((wt * (y - mean) ** 2).sum() / mass)
        return math.sqrt(var) if math.isfinite(var) and var >= 0 else None
    except (OverflowError, ValueError, ZeroDivisionError):
        return None


@register_scheme(aliases=("truncated_normal", "trunc_normal_tf"))
@dataclasses.dataclass(frozen=True)
class TruncNormal(Scheme):
    """Normal N(mean, std²) conditioned on [a, b], sampled exactly (no clamping).

    The density is that of N(mean, std²) on [a, b], renormalised, and 0 outside.
    ``bounds="absolute"`` reads ``a`` and ``b`` as values, as ``torch.nn.init.trunc_normal_``
    does (so with std=0.02 the default [-2, 2] truncates nothing; timm issue 1286).
    ``bounds="std"`` reads them in standard deviations around the mean, as TensorFlow, Keras,
    JAX and timm's ``trunc_normal_tf_`` do: W = mean + std·z, z ~ N(0, 1) truncated to [a, b].

    ``method="exact"`` (default) uses initlab's exact sampler (inverse CDF in float64, the far
    tail mirrored). ``method="torch"`` calls torch's own algorithm for bit parity with
    ``torch.nn.init.trunc_normal_`` (needs a torch.Generator or the global RNG).

    Reference: Burkardt 2014, "The Truncated Normal Distribution",
    https://people.sc.fsu.edu/~jburkardt/presentations/truncated_normal.pdf

    Args:
        mean: the mean of the untruncated normal (finite).
        std: its standard deviation (positive).
        a: the lower bound (-inf allowed).
        b: the upper bound (inf allowed, > a).
        bounds: ``"absolute"`` (values, torch) or ``"std"`` (standard deviations, TF/JAX/timm).
        method: ``"exact"`` or ``"torch"``.

    Example:
        >>> s = TruncNormal(std=0.02, bounds="std")
        >>> round(s.target_std(None), 5)  # 0.02 x the std of N(0, 1) truncated to [-2, 2]
        0.01759
        >>> w = s(torch.empty(100_000), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 4), bool(w.abs().max() <= 0.04)
        (0.0176, True)
    """

    name = "trunc_normal"
    formula = "W ~ N(mean, std^2) | a <= W <= b"
    paper = "Burkardt, The Truncated Normal Distribution (2014)"
    mean: float = 0.0
    std: float = 1.0
    a: float = -2.0
    b: float = 2.0
    bounds: str = "absolute"
    method: str = "exact"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_finite(self.name, "mean", self.mean))
        std = check_positive(self.name, "std", self.std, "; use constant for a fixed value")
        object.__setattr__(self, "std", std)
        for what, v in (("a", self.a), ("b", self.b)):
            x = as_real(v)
            if x is None or math.isnan(x):
                raise ValueError(f"trunc_normal: {what} must be a number, got {v!r}")
            object.__setattr__(self, what, x)
        if not self.a < self.b:
            raise ValueError(f"trunc_normal: need a < b, got a={self.a}, b={self.b}")
        if self.bounds not in ("absolute", "std"):
            raise ValueError(
                f"trunc_normal: bounds must be 'absolute' (torch) or 'std' (TF/JAX/timm), "
                f"got {self.bounds!r}"
            )
        if self.method not in ("exact", "torch"):
            raise ValueError(
                f"trunc_normal: method must be 'exact' or 'torch', got {self.method!r}"
            )

    @property
    def elementwise(self) -> bool:  # type: ignore[override]
        """Whether a window can be generated alone (the exact sampler; torch's cannot)."""
        return self.method == "exact"

    def std_bounds(self) -> tuple[float, float]:
        """The bounds in std about the mean: (a, b), or ((a - mean)/std, (b - mean)/std)."""
        if self.bounds == "std":
            return float(self.a), float(self.b)
        return (self.a - self.mean) / self.std, (self.b - self.mean) / self.std

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        alpha, beta = self.std_bounds()
        if self.method == "torch":
            if not isinstance(rng, TorchSource):
                raise TypeError(
                    "trunc_normal(method='torch') draws with torch's algorithm and needs a "
                    "torch.Generator (or None); use method='exact' with other random sources"
                )
            lo, hi = (self.a, self.b) if self.bounds == "absolute" else (alpha, beta)
            std, mean = (self.std, self.mean) if self.bounds == "absolute" else (1.0, 0.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.nn.init.trunc_normal_(t, mean, std, lo, hi, generator=rng.generator)
            if self.bounds == "std":
                t.mul_(self.std).add_(self.mean)
            return
        rng.trunc_normal_(t, alpha, beta)
        t.mul_(self.std).add_(self.mean)
        lo, hi = self.mean + alpha * self.std, self.mean + beta * self.std
        t.clamp_(lo, hi)  # guards rounding of mean + std*z only; z is already inside [alpha, beta]

    def target_std(self, fans: Fans | None) -> float | None:
        s = _trunc_moments_std(*self.std_bounds())
        return None if s is None else self.std * s

    def check_source(self, kind: str) -> None:
        super().check_source(kind)
        if self.method == "torch" and kind == "keyed":
            raise ValueError(
                "trunc_normal(method='torch') needs rng='torch' (a torch.Generator or torch's "
                "global generator): it calls torch's own sampler, which cannot draw from a "
                "keyed stream; use method='exact' with rng='keyed'"
            )


@register_scheme
@dataclasses.dataclass(frozen=True)
class Constant(Scheme):
    """Every element set to ``val``: W = val, as ``torch.nn.init.constant_``.

    Args:
        val: the value (a Python, NumPy or 0-d tensor number; integers and bools stay ints).

    Example:
        >>> Constant(0.5)(torch.empty(3))
        tensor([0.5000, 0.5000, 0.5000])
        >>> Constant(torch.tensor(2)).to_config()
        {'name': 'constant', 'val': 2}
    """

    name = "constant"
    elementwise = True
    formula = "W = val"
    paper = "-"
    deterministic = True
    val: float = 0.0

    def __post_init__(self) -> None:
        v = self.val
        if isinstance(v, Tensor) and v.dim() == 0 and not v.is_complex():
            v = v.item()  # a Python bool, int or float
        if isinstance(v, numbers.Integral):
            object.__setattr__(self, "val", int(v))  # torch fills True as 1
        elif isinstance(v, numbers.Real):
            object.__setattr__(self, "val", float(v))
        else:
            raise ValueError(f"constant: val must be a number, got {self.val!r}")

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.fill_(self.val)

    def target_std(self, fans: Fans | None) -> float:
        return 0.0


@register_scheme
@dataclasses.dataclass(frozen=True)
class Zeros(Scheme):
    """All zeros: W = 0, as ``torch.nn.init.zeros_``.

    Example:
        >>> Zeros()(torch.empty(2, 2))
        tensor([[0., 0.],
                [0., 0.]])
    """

    name = "zeros"
    elementwise = True
    formula = "W = 0"
    paper = "-"
    deterministic = True

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.zero_()

    def target_std(self, fans: Fans | None) -> float:
        return 0.0


@register_scheme
@dataclasses.dataclass(frozen=True)
class Ones(Scheme):
    """All ones: W = 1, as ``torch.nn.init.ones_``.

    Example:
        >>> Ones()(torch.empty(3))
        tensor([1., 1., 1.])
    """

    name = "ones"
    elementwise = True
    formula = "W = 1"
    paper = "-"
    deterministic = True

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.fill_(1.0)

    def target_std(self, fans: Fans | None) -> float:
        return 0.0
