"""Variance scaling and its named members: Xavier/Glorot, Kaiming/He, LeCun.

One general rule (as JAX's ``variance_scaling`` and Keras' ``VarianceScaling``)::

    Var(W) = scale / n,   n = fan_in | fan_out | (fan_in + fan_out)/2 | sqrt(fan_in * fan_out)

    uniform:          W ~ U(-sqrt(3 Var), +sqrt(3 Var))
    normal:           W ~ N(0, Var)                        (a true normal; Keras' "normal"
                                                            silently means truncated)
    truncated_normal: W ~ N(0, Var / 0.8796²) truncated at ±2 std, which has variance Var

The torch-named schemes (xavier_*, kaiming_*) compute their bound or std with exactly
torch.nn.init's arithmetic, so with torch's fan convention they are bit-identical to it.
Fans come from the ``fans`` argument (layer-aware, from ``initlab.compute_fans``), from
explicit axes (``in_axis``/``out_axis``/``batch_axis``, JAX style), or from torch's shape rule.
"""

from __future__ import annotations

import dataclasses
import math

from torch import Tensor

from ..fans import FAN_MODES, Fans, fans_from_axes, fans_from_shape
from ..gain import calculate_gain, gain
from ..rng import RandomSource
from .base import Scheme, as_real, check_finite, check_positive, register_scheme
from .basic import TRUNC_STD_2

DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
_TORCH_NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip


def _check_mode(scheme: str, mode: str, allowed: tuple[str, ...] = FAN_MODES) -> str:
    """``mode`` lower-cased (as torch does); ValueError when it is not one of ``allowed``."""
    low = mode.lower() if isinstance(mode, str) else mode
    if low not in allowed:
        raise ValueError(f"{scheme}: mode {mode!r} is not supported; use one of {list(allowed)}")
    return low


#: activations whose parameter is a negative slope: a = 0 means slope 0 (relu's gain)
_SLOPE_ACTIVATIONS = ("leaky_relu", "prelu")


def _nonlinearity_gain(nonlinearity: str, a: float | None) -> float:
    """torch's calculate_gain for torch's names (exact parity); initlab.gain for any other.

    Names are matched case-insensitively (``initlab.gain`` lower-cases too), so "Sigmoid" gets
    torch's 1, not the second-moment gain of sigmoid. ``a`` is passed to leaky_relu/prelu as
    their slope (0 included); for elu/celu/softplus a = 0 (the default) means their default
    parameter; activations without a parameter reject a non-zero ``a``.
    """
    if not isinstance(nonlinearity, str):
        raise ValueError(f"nonlinearity must be a name, got {nonlinearity!r}")
    key = nonlinearity.lower()
    if key in _TORCH_NONLINEARITIES:
        return calculate_gain(key, a)  # type: ignore[arg-type]
    if key in _SLOPE_ACTIVATIONS:
        return gain(key, a)
    return gain(key, a if a else None)


def _fans_for(t: Tensor, fans: Fans | None) -> Fans:
    if fans is None:  # only reached for a block filled without fans; base supplies shape fans
        return fans_from_shape(tuple(t.shape))
    return fans


@register_scheme
@dataclasses.dataclass(frozen=True)
class VarianceScaling(Scheme):
    """Var(W) = scale / n(mode), drawn from ``distribution`` (JAX's and Keras' variance scaling).

    n = fan_in, fan_out, (fan_in + fan_out)/2 (``fan_avg``) or sqrt(fan_in·fan_out)
    (``fan_geo_avg``). ``uniform``: U(±sqrt(3·Var)); ``normal``: N(0, Var);
    ``truncated_normal``: N(0, Var/0.87962566²) truncated at ±2 std, which has variance Var.

    Papers: LeCun et al. 1998, "Efficient BackProp",
    http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf; Glorot & Bengio 2010,
    https://proceedings.mlr.press/v9/glorot10a.html; He et al. 2015,
    https://arxiv.org/abs/1502.01852

    Args:
        scale: variance numerator (1: LeCun/Glorot, 2: He; multiply by gain² for activations).
        mode: fan_in, fan_out, fan_avg or fan_geo_avg.
        distribution: truncated_normal (±2 std, variance-corrected), normal or uniform.
        in_axis: explicit input axes (JAX style) for layouts the layer rules do not know; with
            ``out_axis`` they override the fans passed in.
        out_axis: explicit output axes.
        batch_axis: axes of independent weights (counted in neither fan).

    Example:
        >>> import torch
        >>> s = VarianceScaling(2.0, "fan_in", "normal")  # He normal
        >>> w = s(torch.empty(256, 128), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 3), round((2 / 128) ** 0.5, 3)
        (0.125, 0.125)
        >>> hwio = VarianceScaling(1.0, in_axis=(0, 1, 2), out_axis=3)
        >>> hwio.validate((3, 3, 16, 32)).fan_in
        144
    """

    name = "variance_scaling"
    formula = "Var(W) = scale / n(mode)"
    paper = "LeCun et al. 1998; Glorot & Bengio 2010; He et al. 2015"
    uses_fans = True
    elementwise = True
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    in_axis: int | tuple[int, ...] | None = None
    out_axis: int | tuple[int, ...] | None = None
    batch_axis: int | tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_positive(self.name, "scale", self.scale))
        object.__setattr__(self, "mode", _check_mode(self.name, self.mode))
        dist = "normal" if self.distribution == "untruncated_normal" else self.distribution
        object.__setattr__(self, "distribution", dist)
        if dist not in DISTRIBUTIONS:
            raise ValueError(
                f"{self.name}: distribution {self.distribution!r} is not supported; "
                f"use one of {list(DISTRIBUTIONS)}"
            )
        if (self.in_axis is None) != (self.out_axis is None):
            raise ValueError(f"{self.name}: give both in_axis and out_axis, or neither")

    def check_shape(self, shape: tuple[int, ...]) -> None:
        super().check_shape(shape)
        if self.in_axis is not None:
            fans_from_axes(shape, self.in_axis, self.out_axis, self.batch_axis)  # type: ignore[arg-type]

    def _axes_fans(self, shape: tuple[int, ...]) -> Fans:
        return fans_from_axes(shape, self.in_axis, self.out_axis, self.batch_axis)  # type: ignore[arg-type]

    def validate(self, shape: tuple[int, ...], fans: Fans | None = None) -> Fans | None:
        """As Scheme.validate; with explicit axes the fans are the axes' (they override the
        fans passed in), so calls, window fills, plans and ``target_std`` all agree."""
        if self.in_axis is not None:
            self.check_shape(shape)
            fans = self._axes_fans(tuple(shape))
        return super().validate(shape, fans)

    def variance(self, fans: Fans) -> float:
        """Var(W) = scale / n(mode) for these fans; ValueError for a zero fan."""
        n = fans.fan(self.mode)
        if n <= 0:
            raise ValueError(f"{self.name}: {self.mode} is {n}; cannot scale by a zero fan")
        return self.scale / n

    def target_std(self, fans: Fans | None) -> float | None:
        return None if fans is None else math.sqrt(self.variance(fans))

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        # the fans given are validate's (the whole tensor's, also for a window); only a bare
        # fill without fans derives them from t's own shape
        if fans is None and self.in_axis is not None:
            fans = self._axes_fans(tuple(t.shape))
        var = self.variance(_fans_for(t, fans))
        if self.distribution == "uniform":
            bound = math.sqrt(3.0 * var)
            rng.uniform_(t, -bound, bound)
        elif self.distribution == "normal":
            rng.normal_(t, 0.0, math.sqrt(var))
        else:
            rng.trunc_normal_(t, -2.0, 2.0)
            t.mul_(math.sqrt(var) / TRUNC_STD_2)


def _gain_ok(scheme: str, value: float) -> float:
    return check_finite(scheme, "gain", value)


@register_scheme(aliases=("glorot_uniform",))
@dataclasses.dataclass(frozen=True)
class XavierUniform(Scheme):
    """Glorot & Bengio 2010: W ~ U(-a, a), a = gain·sqrt(6 / (fan_in + fan_out)). torch parity.

    Var(W) = gain²·2/(fan_in + fan_out). Bit-identical to ``torch.nn.init.xavier_uniform_`` with
    torch's shape fans. Alias: ``glorot_uniform``.

    Paper: "Understanding the difficulty of training deep feedforward neural networks",
    https://proceedings.mlr.press/v9/glorot10a.html

    Args:
        gain: a scaling factor (finite).

    Example:
        >>> import torch
        >>> w = XavierUniform()(torch.empty(30, 20), generator=torch.Generator().manual_seed(0))
        >>> round(w.abs().max().item(), 3), round((6 / 50) ** 0.5, 3)
        (0.346, 0.346)
    """

    name = "xavier_uniform"
    formula = "U(±gain·sqrt(6/(fan_in+fan_out)))"
    paper = "Glorot & Bengio 2010, Understanding the difficulty of training deep FNNs"
    uses_fans = True
    elementwise = True
    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", _gain_ok(self.name, self.gain))

    def _std(self, fans: Fans) -> float:
        """torch's xavier std, with its exact arithmetic: gain·sqrt(2 / (fan_in + fan_out))."""
        return self.gain * math.sqrt(2.0 / float(fans.fan_in + fans.fan_out))

    def target_std(self, fans: Fans | None) -> float | None:
        return None if fans is None else self._std(fans)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        a = math.sqrt(3.0) * self._std(_fans_for(t, fans))
        rng.uniform_(t, -a, a)


@register_scheme(aliases=("glorot_normal",))
@dataclasses.dataclass(frozen=True)
class XavierNormal(XavierUniform):
    """Glorot & Bengio 2010: W ~ N(0, std²), std = gain·sqrt(2/(fan_in + fan_out)). torch parity.

    Bit-identical to ``torch.nn.init.xavier_normal_`` with torch's shape fans. Alias:
    ``glorot_normal``. Paper: https://proceedings.mlr.press/v9/glorot10a.html

    Args:
        gain: a scaling factor (finite).

    Example:
        >>> import torch
        >>> from initlab.fans import Fans
        >>> s = XavierNormal(gain=2.0)
        >>> round(s.target_std(Fans(100, 300)), 4), round(2 * (2 / 400) ** 0.5, 4)
        (0.1414, 0.1414)
    """

    name = "xavier_normal"
    formula = "N(0, gain²·2/(fan_in+fan_out))"

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.normal_(t, 0.0, self._std(_fans_for(t, fans)))


@register_scheme(aliases=("he_uniform",))
@dataclasses.dataclass(frozen=True)
class KaimingUniform(Scheme):
    """He et al. 2015: W ~ U(±gain·sqrt(3 / fan_mode)). torch parity for torch's arguments.

    Var(W) = gain²/fan_mode. ``nonlinearity`` accepts torch's names (gain from
    ``calculate_gain``, exactly as torch: sqrt(2) for relu, sqrt(2/(1 + a²)) for leaky_relu) and
    any other activation known to :func:`initlab.gain` (gelu, silu, mish, ...), whose gain is
    the second-moment gain. ``mode`` also accepts fan_avg and fan_geo_avg. Alias: ``he_uniform``.

    Paper: "Delving Deep into Rectifiers", https://arxiv.org/abs/1502.01852

    Args:
        a: the negative slope of the rectifier (leaky_relu/prelu), or the activation's parameter.
        mode: fan_in (forward variance), fan_out (backward), fan_avg or fan_geo_avg.
        nonlinearity: the activation that follows the layer.

    Example:
        >>> import torch
        >>> s = KaimingUniform(nonlinearity="relu")
        >>> w = s(torch.empty(64, 50), generator=torch.Generator().manual_seed(0))
        >>> round(w.abs().max().item(), 3), round((2 * 3 / 50) ** 0.5, 3)
        (0.346, 0.346)
    """

    name = "kaiming_uniform"
    formula = "U(±gain(nonlinearity, a)·sqrt(3/fan_mode))"
    paper = "He et al. 2015, Delving Deep into Rectifiers"
    uses_fans = True
    elementwise = True
    a: float = 0.0
    mode: str = "fan_in"
    nonlinearity: str = "leaky_relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _check_mode(self.name, self.mode))
        a = as_real(self.a)
        if a is None:
            raise ValueError(f"{self.name}: a must be a number, got {self.a!r}")
        if not isinstance(self.a, int):  # keep ints (torch's a=0) and bools (rejected) as given
            object.__setattr__(self, "a", a)
        _nonlinearity_gain(self.nonlinearity, self.a)  # validates the name and slope now

    def _std(self, fans: Fans) -> float:
        fan = fans.fan(self.mode)
        if fan <= 0:
            raise ValueError(f"{self.name}: {self.mode} is {fan}; cannot scale by a zero fan")
        if self.mode in ("fan_in", "fan_out"):
            fan = int(fan)  # torch divides by an int fan; keep its arithmetic
        return _nonlinearity_gain(self.nonlinearity, self.a) / math.sqrt(fan)

    def target_std(self, fans: Fans | None) -> float | None:
        return None if fans is None else self._std(fans)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        bound = math.sqrt(3.0) * self._std(_fans_for(t, fans))
        rng.uniform_(t, -bound, bound)


@register_scheme(aliases=("he_normal",))
@dataclasses.dataclass(frozen=True)
class KaimingNormal(KaimingUniform):
    """He et al. 2015: W ~ N(0, std²), std = gain / sqrt(fan_mode). torch parity.

    gain as in :class:`KaimingUniform`. Alias: ``he_normal``.
    Paper: "Delving Deep into Rectifiers", https://arxiv.org/abs/1502.01852

    Args:
        a: the negative slope of the rectifier (leaky_relu/prelu), or the activation's parameter.
        mode: fan_in, fan_out, fan_avg or fan_geo_avg.
        nonlinearity: the activation that follows the layer.

    Example:
        >>> import torch
        >>> s = KaimingNormal(mode="fan_out", nonlinearity="relu")
        >>> w = s(torch.empty(128, 256), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 3), round((2 / 128) ** 0.5, 3)
        (0.125, 0.125)
    """

    name = "kaiming_normal"
    formula = "N(0, gain(nonlinearity, a)²/fan_mode)"

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rng.normal_(t, 0, self._std(_fans_for(t, fans)))


@register_scheme
@dataclasses.dataclass(frozen=True)
class LecunUniform(Scheme):
    """LeCun et al. 1998: W ~ U(±sqrt(3 / fan_in)), so Var(W) = 1/fan_in (JAX/Keras lecun_uniform).

    Paper: "Efficient BackProp", http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf

    Example:
        >>> import torch
        >>> w = LecunUniform()(torch.empty(100, 48), generator=torch.Generator().manual_seed(0))
        >>> round(w.abs().max().item(), 2), round((3 / 48) ** 0.5, 2)
        (0.25, 0.25)
    """

    name = "lecun_uniform"
    formula = "U(±sqrt(3/fan_in))"
    paper = "LeCun et al. 1998, Efficient BackProp"
    uses_fans = True
    elementwise = True

    def target_std(self, fans: Fans | None) -> float | None:
        return None if fans is None else math.sqrt(1.0 / fans.fan_in)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        VarianceScaling(1.0, "fan_in", "uniform").fill(t, fans, rng)


@register_scheme
@dataclasses.dataclass(frozen=True)
class LecunNormal(Scheme):
    """LeCun et al. 1998; Klambauer et al. 2017 (SELU): Var(W) = 1 / fan_in.

    ``distribution`` defaults to truncated_normal (±2 std, std divided by 0.87962566 so the
    variance is still 1/fan_in), as JAX, Keras and timm's lecun_normal; pass ``"normal"`` for
    the untruncated normal of the SELU paper.

    Papers: "Efficient BackProp", http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf;
    "Self-Normalizing Neural Networks", https://arxiv.org/abs/1706.02515

    Args:
        distribution: truncated_normal, normal or uniform.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = LecunNormal("normal")(torch.empty(400, 100), generator=g)
        >>> round(w.std().item(), 2)
        0.1
    """

    name = "lecun_normal"
    formula = "Var(W) = 1/fan_in (truncated normal by default)"
    paper = "LeCun et al. 1998; Klambauer et al. 2017, Self-Normalizing Neural Networks"
    uses_fans = True
    elementwise = True
    distribution: str = "truncated_normal"

    def __post_init__(self) -> None:
        VarianceScaling(1.0, "fan_in", self.distribution)  # validates

    def target_std(self, fans: Fans | None) -> float | None:
        return None if fans is None else math.sqrt(1.0 / fans.fan_in)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        VarianceScaling(1.0, "fan_in", self.distribution).fill(t, fans, rng)
