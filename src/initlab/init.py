"""A drop-in for ``torch.nn.init``: ``from initlab import init``.

Every public function of ``torch.nn.init`` is here with the same name, signature and
``generator`` argument. Given the same generator state and torch's shape-only fans (the
default when no ``fans`` is passed), each produces bit-for-bit the same tensor as torch 2.13,
except ``trunc_normal_``, whose default is initlab's exact sampler (``method="torch"`` gives
torch's algorithm and its numbers).

Differences that are fixes, not breaks:

* fan-based functions take an optional keyword ``fans=`` (from ``initlab.compute_fans``), so
  packed parameters are filled block by block with layer-aware fans;
* values never depend on memory layout (a channels_last tensor gets the same values as a
  contiguous one);
* ``sparse_`` draws its zero mask from ``generator`` when one is given;
* ``orthogonal_`` works for float16/bfloat16 (QR in float32);
* bad input raises before the tensor is touched.

Beyond torch: ``lecun_uniform_``, ``lecun_normal_``, ``variance_scaling_``,
``delta_orthogonal_``, ``identity_``, ``zero_hadamard_``, ``custom_``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .fans import Fans, torch_fans
from .gain import calculate_gain
from .rng import RandomSource
from .schemes import get_scheme

Generator = torch.Generator | RandomSource | None

__all__ = [
    "calculate_gain",
    "constant_",
    "custom_",
    "delta_orthogonal_",
    "dirac_",
    "eye_",
    "identity_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zero_hadamard_",
    "zeros_",
]


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """torch's private shape rule, kept for code that calls it through ``init``."""
    return torch_fans(tuple(tensor.shape))


def _warn_empty(tensor: Tensor) -> bool:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator = None) -> Tensor:
    """Fill with U(a, b)."""
    return get_scheme("uniform", a=a, b=b)(tensor, None, generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator = None
) -> Tensor:
    """Fill with N(mean, std²)."""
    return get_scheme("normal", mean=mean, std=std)(tensor, None, generator)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Generator = None,
    *,
    bounds: str = "absolute",
    method: str = "exact",
) -> Tensor:
    """Fill with N(mean, std²) truncated to [a, b], sampled exactly.

    ``bounds="absolute"`` (torch's meaning) or ``"std"`` (TF/JAX/timm: a, b in standard
    deviations). ``method="torch"`` reproduces torch.nn.init.trunc_normal_ bit for bit.
    """
    scheme = get_scheme("trunc_normal", mean=mean, std=std, a=a, b=b, bounds=bounds, method=method)
    return scheme(tensor, None, generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return get_scheme("constant", val=val)(tensor)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return get_scheme("ones")(tensor)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return get_scheme("zeros")(tensor)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (torch.eye of its shape)."""
    return get_scheme("eye")(tensor)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3/4/5-D conv kernel with the Dirac delta (identity per group)."""
    return get_scheme("dirac", groups=groups)(tensor)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Glorot & Bengio 2010: U(±gain·sqrt(6/(fan_in+fan_out)))."""
    return get_scheme("xavier_uniform", gain=gain)(tensor, fans, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Glorot & Bengio 2010: N(0, gain²·2/(fan_in+fan_out))."""
    return get_scheme("xavier_normal", gain=gain)(tensor, fans, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
    *,
    fans: Fans | None = None,
) -> Tensor:
    """He et al. 2015: U(±gain·sqrt(3/fan_mode))."""
    if _warn_empty(tensor):
        return tensor
    scheme = get_scheme("kaiming_uniform", a=a, mode=mode, nonlinearity=nonlinearity)
    return scheme(tensor, fans, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
    *,
    fans: Fans | None = None,
) -> Tensor:
    """He et al. 2015: N(0, gain²/fan_mode)."""
    if _warn_empty(tensor):
        return tensor
    scheme = get_scheme("kaiming_normal", a=a, mode=mode, nonlinearity=nonlinearity)
    return scheme(tensor, fans, generator)


def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Saxe et al. 2013: a (semi-)orthogonal matrix times gain (per block with ``fans``)."""
    return get_scheme("orthogonal", gain=gain)(tensor, fans, generator)


def sparse_(
    tensor: Tensor, sparsity: float, std: float = 0.01, generator: Generator = None
) -> Tensor:
    """Martens 2010: N(0, std²) with a fraction ``sparsity`` of each column zeroed."""
    return get_scheme("sparse", sparsity=sparsity, std=std)(tensor, None, generator)


# -- beyond torch.nn.init ---------------------------------------------------------------------
def lecun_uniform_(
    tensor: Tensor, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """LeCun 1998: U(±sqrt(3/fan_in))."""
    return get_scheme("lecun_uniform")(tensor, fans, generator)


def lecun_normal_(
    tensor: Tensor,
    generator: Generator = None,
    *,
    distribution: str = "truncated_normal",
    fans: Fans | None = None,
) -> Tensor:
    """LeCun 1998: Var = 1/fan_in (truncated normal by default, as JAX/Keras/timm)."""
    return get_scheme("lecun_normal", distribution=distribution)(tensor, fans, generator)


def variance_scaling_(
    tensor: Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    generator: Generator = None,
    *,
    in_axis: int | tuple[int, ...] | None = None,
    out_axis: int | tuple[int, ...] | None = None,
    batch_axis: int | tuple[int, ...] = (),
    fans: Fans | None = None,
) -> Tensor:
    """Var(W) = scale / n(mode), as JAX's variance_scaling (explicit axes optional)."""
    scheme = get_scheme(
        "variance_scaling",
        scale=scale,
        mode=mode,
        distribution=distribution,
        in_axis=in_axis,
        out_axis=out_axis,
        batch_axis=batch_axis,
    )
    return scheme(tensor, fans, generator)


def delta_orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """Xiao et al. 2018: orthogonal centre tap, zero elsewhere."""
    return get_scheme("delta_orthogonal", gain=gain)(tensor, None, generator)


def identity_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Identity on the leading square block of a 2-D weight, times gain."""
    return get_scheme("identity", gain=gain)(tensor)


def zero_hadamard_(tensor: Tensor) -> Tensor:
    """Zhao et al. 2021 (ZerO): identity or Hadamard-based deterministic init."""
    return get_scheme("zero_hadamard")(tensor)


def custom_(
    tensor: Tensor, fn: Callable[[tuple[int, ...], Any], Any], generator: Generator = None
) -> Tensor:
    """Values from ``fn(shape, generator)`` copied into ``tensor`` (keeps dtype, device, id)."""
    return get_scheme("custom", fn=fn)(tensor, None, generator)


# -- torch's deprecated aliases (same FutureWarning as torch) ----------------------------------
def _deprecated(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    old = fn.__name__[:-1]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        warnings.warn(
            f"`nn.init.{old}` is now deprecated in favor of `nn.init.{fn.__name__}`.",
            FutureWarning,
            stacklevel=2,
        )
        return fn(*args, **kwargs)

    wrapper.__name__ = old
    return wrapper


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
