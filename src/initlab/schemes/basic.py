"""Schemes that need no fans: uniform, normal, truncated normal, constants."""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
from torch import Tensor

from ..fans import Fans
from ..rng import RandomSource, TorchSource
from .base import Scheme, check_finite, check_nonneg, check_positive, register_scheme


@register_scheme
@dataclasses.dataclass(frozen=True)
class Uniform(Scheme):
    """Values drawn from U(a, b). torch.nn.init.uniform_."""

    name = "uniform"
    elementwise = True
    formula = "W ~ U(a, b)"
    paper = "-"
    a: float = 0.0
    b: float = 1.0

    def __post_init__(self) -> None:
        check_finite(self.name, "a", self.a)
        check_finite(self.name, "b", self.b)
        if self.a > self.b:
            raise ValueError(f"uniform: need a <= b, got a={self.a}, b={self.b}; swap them")

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.uniform_(t, self.a, self.b)

    def target_std(self, fans: Fans | None) -> float:
        return (self.b - self.a) / math.sqrt(12.0)


@register_scheme
@dataclasses.dataclass(frozen=True)
class Normal(Scheme):
    """Values drawn from N(mean, std²). torch.nn.init.normal_."""

    name = "normal"
    elementwise = True
    formula = "W ~ N(mean, std^2)"
    paper = "-"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        check_finite(self.name, "mean", self.mean)
        check_nonneg(self.name, "std", self.std)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.normal_(t, self.mean, self.std)

    def target_std(self, fans: Fans | None) -> float:
        return float(self.std)


#: std of a standard normal truncated to [-2, 2]; dividing by it restores the intended variance.
TRUNC_STD_2 = 0.87962566103423978


def _trunc_moments_std(a: float, b: float) -> float:
    """Standard deviation of N(0, 1) truncated to [a, b] (for reporting the achieved target)."""
    phi = lambda x: 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    z = cdf(b) - cdf(a)
    ta = 0.0 if math.isinf(a) else a * phi(a)
    tb = 0.0 if math.isinf(b) else b * phi(b)
    mean = (phi(a) - phi(b)) / z
    var = 1 + (ta - tb) / z - mean**2
    return math.sqrt(max(var, 0.0))


@register_scheme(aliases=("truncated_normal", "trunc_normal_tf"))
@dataclasses.dataclass(frozen=True)
class TruncNormal(Scheme):
    """Normal N(mean, std²) conditioned on [a, b], sampled exactly (no clamping).

    ``bounds="absolute"`` reads ``a`` and ``b`` as values, as ``torch.nn.init.trunc_normal_``
    does (so with std=0.02 the default [-2, 2] truncates nothing; timm issue 1286).
    ``bounds="std"`` reads them in standard deviations around the mean, as TensorFlow, Keras,
    JAX and timm's ``trunc_normal_tf_`` do.

    ``method="exact"`` (default) uses initlab's exact sampler (inverse CDF / tail methods).
    ``method="torch"`` calls torch's own algorithm for bit parity with
    ``torch.nn.init.trunc_normal_`` (needs a torch.Generator or the global RNG).
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
        check_finite(self.name, "mean", self.mean)
        check_positive(self.name, "std", self.std, "; use constant for a fixed value")
        for what, v in (("a", self.a), ("b", self.b)):
            if not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"trunc_normal: {what} must be a number, got {v!r}")
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
        return self.method == "exact"

    def std_bounds(self) -> tuple[float, float]:
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

    def target_std(self, fans: Fans | None) -> float:
        return self.std * _trunc_moments_std(*self.std_bounds())


@register_scheme
@dataclasses.dataclass(frozen=True)
class Constant(Scheme):
    """Every element set to ``val``. torch.nn.init.constant_."""

    name = "constant"
    elementwise = True
    formula = "W = val"
    paper = "-"
    deterministic = True
    val: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.val, (int, float)) or isinstance(self.val, bool):
            raise ValueError(f"constant: val must be a number, got {self.val!r}")

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.fill_(self.val)

    def target_std(self, fans: Fans | None) -> float:
        return 0.0


@register_scheme
@dataclasses.dataclass(frozen=True)
class Zeros(Scheme):
    """All zeros. torch.nn.init.zeros_."""

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
    """All ones. torch.nn.init.ones_."""

    name = "ones"
    elementwise = True
    formula = "W = 1"
    paper = "-"
    deterministic = True

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.fill_(1.0)

    def target_std(self, fans: Fans | None) -> float:
        return 0.0
