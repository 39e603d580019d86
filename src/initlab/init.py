"""A drop-in for ``torch.nn.init``: ``from initlab import init``.

Every public function of ``torch.nn.init`` is here with the same name, signature and
``generator`` argument. Given the same generator state and torch's shape-only fans (the
default when no ``fans`` is passed), each produces bit-for-bit the same tensor as torch 2.13
on a contiguous tensor, with these exceptions:

* ``trunc_normal_`` uses initlab's exact sampler by default; ``method="torch"`` gives
  torch's algorithm and its numbers;
* ``sparse_`` with a ``generator`` draws its zero mask from that generator (torch draws it
  from the global generator even then); with ``generator=None`` it matches torch;
* a non-contiguous tensor (``channels_last``, a transposed view) receives the values a
  contiguous tensor of its shape would, element by element; torch fills it in memory order,
  so its values differ (and its ``orthogonal_`` raises).

Differences that are fixes, not breaks:

* fan-based functions take an optional keyword ``fans=`` (from ``initlab.compute_fans``), so
  packed parameters are filled block by block with layer-aware fans;
* values never depend on memory layout (see above);
* ``orthogonal_`` works for float16/bfloat16 (QR in float32);
* bad input raises before the tensor is touched.

Beyond torch: ``lecun_uniform_``, ``lecun_normal_``, ``variance_scaling_``,
``delta_orthogonal_``, ``identity_``, ``zero_hadamard_``, ``custom_``.

Example:
    >>> import torch
    >>> from initlab import init
    >>> g = torch.Generator().manual_seed(0)
    >>> a = init.kaiming_normal_(torch.empty(4, 3), generator=g)
    >>> b = torch.nn.init.kaiming_normal_(
    ...     torch.empty(4, 3), generator=torch.Generator().manual_seed(0))
    >>> torch.equal(a, b)
    True
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
    """Fill ``tensor`` with values drawn from the uniform distribution U(a, b).

    Bit-identical to ``torch.nn.init.uniform_`` for the same generator state.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        a: the lower bound.
        b: the upper bound.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> init.uniform_(torch.empty(2, 3), -1.0, 1.0, generator=g)
        tensor([[-0.0075,  0.5364, -0.8230],
                [-0.7359, -0.3852,  0.2682]])
        >>> torch.equal(_, torch.nn.init.uniform_(
        ...     torch.empty(2, 3), -1.0, 1.0, generator=torch.Generator().manual_seed(0)))
        True
    """
    return get_scheme("uniform", a=a, b=b)(tensor, None, generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator = None
) -> Tensor:
    """Fill ``tensor`` with values drawn from the normal distribution N(mean, std²).

    Bit-identical to ``torch.nn.init.normal_`` for the same generator state.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        mean: the mean of the normal distribution.
        std: the standard deviation of the normal distribution.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.normal_(torch.empty(200, 100), 1.0, 0.5, generator=g)
        >>> round(w.mean().item(), 1), round(w.std().item(), 2)
        (1.0, 0.5)
    """
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
    """Fill ``tensor`` with N(mean, std²) truncated to [a, b], sampled exactly.

    The values follow the normal distribution conditioned on a <= x <= b. With the default
    ``bounds="absolute"`` (torch's meaning) a and b are values: ``std=0.02`` with the default
    bounds ±2 truncates nothing. ``bounds="std"`` reads them in standard deviations about the
    mean (TF/JAX/timm's ``trunc_normal_tf_``): x = mean + std·z, z ~ N(0, 1) truncated to [a, b].

    The default sampler (``method="exact"``, :func:`initlab.sampling.standard_trunc_normal_`)
    is exact in the tails too, so its numbers differ from torch's. ``method="torch"`` runs
    torch.nn.init.trunc_normal_'s algorithm and gives its numbers bit for bit.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        mean: the mean of the normal distribution.
        std: the standard deviation of the normal distribution.
        a: the lower bound (a value, or standard deviations with ``bounds="std"``).
        b: the upper bound.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        bounds: ``"absolute"`` (torch) or ``"std"`` (TF/JAX/timm).
        method: ``"exact"`` (initlab's sampler) or ``"torch"`` (torch's algorithm and numbers).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.trunc_normal_(torch.empty(10_000), std=0.02, bounds="std", generator=g)
        >>> round(w.abs().max().item(), 4) <= 0.04, round(w.std().item(), 4)
        (True, 0.0176)
        >>> t = init.trunc_normal_(torch.empty(3, 4), generator=torch.Generator().manual_seed(0),
        ...                        method="torch")
        >>> torch.equal(t, torch.nn.init.trunc_normal_(
        ...     torch.empty(3, 4), generator=torch.Generator().manual_seed(0)))
        True
    """
    scheme = get_scheme("trunc_normal", mean=mean, std=std, a=a, b=b, bounds=bounds, method=method)
    return scheme(tensor, None, generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with the value ``val``.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        val: the value (a Python, NumPy or 0-d tensor number).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.constant_(torch.empty(2, 3), 0.3)
        tensor([[0.3000, 0.3000, 0.3000],
                [0.3000, 0.3000, 0.3000]])
    """
    return get_scheme("constant", val=val)(tensor)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with the scalar value 1.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.ones_(torch.empty(2, 2))
        tensor([[1., 1.],
                [1., 1.]])
    """
    return get_scheme("ones")(tensor)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with the scalar value 0.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.zeros_(torch.empty(3))
        tensor([0., 0., 0.])
    """
    return get_scheme("zeros")(tensor)


def eye_(tensor: Tensor) -> Tensor:
    """Fill the 2-D ``tensor`` with the identity matrix: W = I(rows, cols) (``torch.eye``).

    Preserves the identity of the inputs in Linear layers, where as many inputs are preserved as
    possible. Exactly ``torch.nn.init.eye_``; use :func:`identity_` for a gain or one identity per
    packed block.

    Args:
        tensor: a 2-dimensional tensor, filled in place.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.eye_(torch.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    return get_scheme("eye")(tensor)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a {3, 4, 5}-D convolution kernel with the Dirac delta function.

    W[g·out/groups + d, d, k//2, ...] = 1 for each group g and d < min(out/groups, in), 0
    elsewhere, so the convolution copies as many input channels of each group as it can.
    Exactly ``torch.nn.init.dirac_``.

    Args:
        tensor: a {3, 4, 5}-dimensional kernel [out, in, *k], filled in place.
        groups: the number of groups of the convolution; dim 0 must be divisible by it.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> w = init.dirac_(torch.empty(2, 2, 3))
        >>> w[:, :, 1]
        tensor([[1., 0.],
                [0., 1.]])
        >>> x = torch.randn(1, 2, 5, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(torch.nn.functional.conv1d(x, w, padding=1), x)
        True
    """
    return get_scheme("dirac", groups=groups)(tensor)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Fill ``tensor`` with Glorot uniform values: U(-a, a), a = gain·sqrt(6/(fan_in + fan_out)).

    Var(W) = gain²·2/(fan_in + fan_out), the compromise between keeping forward and backward
    variances constant. Bit-identical to ``torch.nn.init.xavier_uniform_`` when ``fans`` is not
    given.

    Paper: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks", https://proceedings.mlr.press/v9/glorot10a.html

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        gain: an optional scaling factor (e.g. ``calculate_gain("tanh")``).
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.xavier_uniform_(torch.empty(300, 200), generator=g)
        >>> round(w.abs().max().item(), 3), round((6 / (200 + 300)) ** 0.5, 3)
        (0.11, 0.11)
        >>> import initlab
        >>> mha = torch.nn.MultiheadAttention(8, 2)
        >>> fans = initlab.compute_fans(mha, "in_proj_weight")  # q, k, v: each [8, 8]
        >>> _ = init.xavier_uniform_(mha.in_proj_weight, fans=fans)
        >>> round(mha.in_proj_weight.abs().max().item(), 3) <= round((6 / 16) ** 0.5, 3)
        True
    """
    return get_scheme("xavier_uniform", gain=gain)(tensor, fans, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Fill ``tensor`` with Glorot normal values: N(0, std²), std = gain·sqrt(2/(fan_in + fan_out)).

    Bit-identical to ``torch.nn.init.xavier_normal_`` when ``fans`` is not given.

    Paper: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks", https://proceedings.mlr.press/v9/glorot10a.html

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        gain: an optional scaling factor.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.xavier_normal_(torch.empty(300, 200), generator=g)
        >>> round(w.std().item(), 3), round((2 / (200 + 300)) ** 0.5, 3)
        (0.063, 0.063)
    """
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
    """Fill ``tensor`` with He uniform values: U(-bound, bound), bound = gain·sqrt(3/fan_mode).

    gain = ``calculate_gain(nonlinearity, a)`` for torch's names (sqrt(2) for relu,
    sqrt(2/(1 + a²)) for leaky_relu), and :func:`initlab.gain` for any other activation (gelu,
    silu, ...). Bit-identical to ``torch.nn.init.kaiming_uniform_`` for torch's arguments when
    ``fans`` is not given. A zero-element tensor warns and is returned untouched, as in torch.

    Paper: He et al. 2015, "Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification", https://arxiv.org/abs/1502.01852

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        a: the negative slope of the rectifier after this layer (leaky_relu/prelu only).
        mode: ``"fan_in"`` (preserves the variance of the forward pass), ``"fan_out"`` (of the
            backward pass); initlab also accepts ``"fan_avg"`` and ``"fan_geo_avg"``.
        nonlinearity: the activation after this layer (``"relu"``, ``"leaky_relu"``, ``"gelu"``...).
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.kaiming_uniform_(torch.empty(64, 50), nonlinearity="relu", generator=g)
        >>> round(w.abs().max().item(), 3), round(2 ** 0.5 * (3 / 50) ** 0.5, 3)
        (0.346, 0.346)
    """
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
    """Fill ``tensor`` with Kaiming/He normal values: N(0, std²), std = gain/sqrt(fan_mode).

    gain as in :func:`kaiming_uniform_`. Bit-identical to ``torch.nn.init.kaiming_normal_`` for
    torch's arguments when ``fans`` is not given.

    Paper: He et al. 2015, "Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification", https://arxiv.org/abs/1502.01852

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        a: the negative slope of the rectifier after this layer (leaky_relu/prelu only).
        mode: ``"fan_in"`` (default) or ``"fan_out"`` (also ``"fan_avg"``, ``"fan_geo_avg"``).
        nonlinearity: the activation after this layer.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.kaiming_normal_(torch.empty(256, 128), nonlinearity="relu", generator=g)
        >>> round(w.std().item(), 3), round((2 / 128) ** 0.5, 3)
        (0.125, 0.125)
        >>> import initlab
        >>> conv = torch.nn.ConvTranspose2d(16, 32, 3, groups=4)  # torch's fans: 72 in, 144 out
        >>> initlab.compute_fans(conv, "weight").fan_in
        36
    """
    if _warn_empty(tensor):
        return tensor
    scheme = get_scheme("kaiming_normal", a=a, mode=mode, nonlinearity=nonlinearity)
    return scheme(tensor, fans, generator)


def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Fill ``tensor`` with a (semi-)orthogonal matrix times ``gain``.

    Dims after the first are flattened: W [rows, cols] = gain·Q with Q from the QR decomposition
    of G ~ N(0, 1) (sign-corrected so Q is Haar-distributed); W Wᵀ = gain²·I when rows <= cols,
    WᵀW = gain²·I otherwise. With ``fans`` holding blocks, each block is orthogonal. Bit-identical
    to ``torch.nn.init.orthogonal_`` for float32/float64 without ``fans``; float16/bfloat16 are
    computed in float32 and cast.

    Paper: Saxe, McClelland & Ganguli 2013, "Exact solutions to the nonlinear dynamics of learning
    in deep linear neural networks", https://arxiv.org/abs/1312.6120

    Args:
        tensor: a tensor with at least 2 dimensions, filled in place.
        gain: the scaling factor.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.orthogonal_(torch.empty(3, 5), gain=2.0, generator=g)
        >>> torch.allclose(w @ w.T, 4 * torch.eye(3), atol=1e-5)
        True
    """
    return get_scheme("orthogonal", gain=gain)(tensor, fans, generator)


def sparse_(
    tensor: Tensor, sparsity: float, std: float = 0.01, generator: Generator = None
) -> Tensor:
    """Fill the 2-D ``tensor`` with N(0, std²) values and ceil(sparsity·rows) zeros per column.

    With ``generator=None`` bit-identical to ``torch.nn.init.sparse_``. With a generator, the
    zeroed positions are drawn from that generator too (torch draws them from the global
    generator even then), so the result depends on the generator alone.

    Paper: Martens 2010, "Deep learning via Hessian-free optimization",
    https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf

    Args:
        tensor: a 2-dimensional tensor, filled in place.
        sparsity: the fraction of elements in each column to be set to zero.
        std: the standard deviation of the normal distribution of the non-zero values.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> w = init.sparse_(torch.empty(10, 4), 0.3, generator=torch.Generator().manual_seed(0))
        >>> (w == 0).sum(dim=0)
        tensor([3, 3, 3, 3])
    """
    return get_scheme("sparse", sparsity=sparsity, std=std)(tensor, None, generator)


# -- beyond torch.nn.init ---------------------------------------------------------------------
def lecun_uniform_(
    tensor: Tensor, generator: Generator = None, *, fans: Fans | None = None
) -> Tensor:
    """Fill ``tensor`` with LeCun uniform values: U(-a, a), a = sqrt(3/fan_in); Var(W) = 1/fan_in.

    Paper: LeCun, Bottou, Orr & Müller 1998, "Efficient BackProp",
    http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.lecun_uniform_(torch.empty(100, 48), generator=g)
        >>> round(w.abs().max().item(), 2), round((3 / 48) ** 0.5, 2)
        (0.25, 0.25)
    """
    return get_scheme("lecun_uniform")(tensor, fans, generator)


def lecun_normal_(
    tensor: Tensor,
    generator: Generator = None,
    *,
    distribution: str = "truncated_normal",
    fans: Fans | None = None,
) -> Tensor:
    """Fill ``tensor`` with LeCun normal values: Var(W) = 1/fan_in.

    By default a normal truncated at ±2 std whose std is divided by 0.87962566 so the variance is
    still 1/fan_in (as JAX, Keras and timm's ``lecun_normal``); ``distribution="normal"`` draws
    N(0, 1/fan_in), the SELU paper's choice.

    Papers: LeCun et al. 1998, "Efficient BackProp",
    http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf; Klambauer et al. 2017,
    "Self-Normalizing Neural Networks", https://arxiv.org/abs/1706.02515

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.lecun_normal_(torch.empty(400, 100), generator=g)
        >>> round(w.std().item(), 3), round(w.abs().max().item() * 0.8796 / 2, 3)  # std, bound / 2
        (0.1, 0.1)
    """
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
    """Fill ``tensor`` so that Var(W) = scale / n, with n chosen by ``mode``.

    n = fan_in, fan_out, (fan_in + fan_out)/2 (``fan_avg``) or sqrt(fan_in·fan_out)
    (``fan_geo_avg``). ``uniform``: U(±sqrt(3·Var)); ``normal``: N(0, Var);
    ``truncated_normal``: N(0, Var/0.87962566²) truncated at ±2 std, whose variance is Var.
    Xavier is scale 1, fan_avg; He is scale 2, fan_in; LeCun is scale 1, fan_in (as JAX's
    ``variance_scaling``, of which they are partials).

    Papers: LeCun et al. 1998, http://yann.lecun.com/exdb/publis/pdf/lecun-98b.pdf; Glorot &
    Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html; He et al. 2015,
    https://arxiv.org/abs/1502.01852

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        scale: the variance numerator (positive).
        mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
        distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.
        in_axis: the axis or axes summed into one output (JAX style); give with ``out_axis``.
            Explicit axes override ``fans``.
        out_axis: the axis or axes of the outputs.
        batch_axis: axes of independent weights (neither fan).
        fans: layer-aware fans, ``initlab.compute_fans(module, name)``: packed parameters
            (attention q/k/v, RNN gates) are then filled block by block, each with its own fans.
            Default: torch's shape rule (fan_in = dim 1 x receptive field, fan_out = dim 0 x
            receptive field).

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> g = torch.Generator().manual_seed(0)
        >>> w = init.variance_scaling_(torch.empty(200, 300), 2.0, "fan_avg", "uniform",
        ...                            generator=g)
        >>> round(w.var().item(), 3), 2.0 / 250
        (0.008, 0.008)
        >>> k = init.variance_scaling_(torch.empty(3, 3, 64, 32), in_axis=(0, 1, 2), out_axis=3,
        ...                            distribution="normal", generator=g)  # HWIO: fan_in 576
        >>> round(k.std().item(), 3), round(576 ** -0.5, 3)
        (0.042, 0.042)
    """
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
    """Fill a convolution kernel [out, in, *k] with a delta-orthogonal kernel.

    All taps are zero except the centre (index k//2 in every spatial dimension), which is gain·Q
    with Q an [out, in] matrix with orthonormal columns (QᵀQ = I; needs in <= out). Each input
    pixel's channel vector x then maps to gain·Q x, so with in == out, an odd kernel size and
    "same" zero padding (or circular padding) the layer preserves the norm of its input exactly,
    times |gain|. Norm preservation holds for odd kernels only: an even kernel has no centre tap,
    and k//2 is off-centre, so with "same" zero padding the output is shifted and the border is
    lost.

    Paper: Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train
    10,000-Layer Vanilla Convolutional Neural Networks", https://arxiv.org/abs/1806.05393

    Args:
        tensor: a {3, 4, 5}-dimensional kernel [out, in, *k] with in <= out, filled in place.
        gain: the scaling factor.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> import torch.nn.functional as F
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(1, 4, 8, 8, generator=g)
        >>> odd = init.delta_orthogonal_(torch.empty(4, 4, 3, 3), generator=g)
        >>> round((F.conv2d(x, odd, padding=1).norm() / x.norm()).item(), 4)
        1.0
        >>> even = init.delta_orthogonal_(torch.empty(4, 4, 2, 2), generator=g)
        >>> same = F.conv2d(F.pad(x, (0, 1, 0, 1)), even)  # "same" padding for a 2x2 kernel
        >>> round((same.norm() / x.norm()).item(), 4) < 1
        True
    """
    return get_scheme("delta_orthogonal", gain=gain)(tensor, None, generator)


def identity_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Fill the 2-D ``tensor`` with gain times the identity: W = gain·I(rows, cols).

    gain on the main diagonal of the leading square block, 0 elsewhere; with ``fans`` holding
    blocks (an LSTM's gates) one identity per block (the IRNN choice).

    Paper: Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
    Linear Units", https://arxiv.org/abs/1504.00941

    Args:
        tensor: a 2-dimensional tensor, filled in place.
        gain: the value on the diagonal.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.identity_(torch.empty(2, 3), gain=0.5)
        tensor([[0.5000, 0.0000, 0.0000],
                [0.0000, 0.5000, 0.0000]])
    """
    return get_scheme("identity", gain=gain)(tensor)


def zero_hadamard_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with ZerO's deterministic matrix of zeros, ones and one Hadamard scale.

    For W [m, n] (m = out, n = in): W = I(m, n) when m <= n; else, with c = ceil(log2 m) and
    p = 2^c, W = I(m, p)·H_p/2^(c/2)·I(p, n), H_p the Sylvester Hadamard matrix. Convolution
    kernels get this matrix on the centre tap (k//2), zeros elsewhere.

    Paper: Zhao, Schäfer & Anandkumar 2021, "ZerO Initialization: Initializing Neural Networks with
    only Zeros and Ones", https://arxiv.org/abs/2110.12661

    Args:
        tensor: a {2, 3, 4, 5}-dimensional tensor, filled in place.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.zero_hadamard_(torch.empty(4, 2)) * 2  # m > n: H_4 / 2, first two columns
        tensor([[ 1.,  1.],
                [ 1., -1.],
                [ 1.,  1.],
                [ 1., -1.]])
    """
    return get_scheme("zero_hadamard")(tensor)


def custom_(
    tensor: Tensor, fn: Callable[[tuple[int, ...], Any], Any], generator: Generator = None
) -> Tensor:
    """Fill ``tensor`` with the values ``fn(shape, generator)`` returns (cast to its dtype).

    ``fn`` returns a tensor or a NumPy array of exactly ``shape``, or a number for all.

    Args:
        tensor: an n-dimensional tensor or parameter, filled in place.
        fn: a callable ``(shape, generator) -> values``.
        generator: a ``torch.Generator`` or an initlab random source (e.g. a
            :class:`~initlab.streams.KeyedStream`); None draws from torch's global generator.

    Returns:
        ``tensor``, filled.

    Example:
        >>> from initlab import init
        >>> init.custom_(torch.empty(2, 2), lambda shape, gen: torch.arange(4.0).reshape(shape))
        tensor([[0., 1.],
                [2., 3.]])
    """
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
    wrapper.__doc__ = f"Deprecated alias of :func:`{fn.__name__}` (warns as torch does)."
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
