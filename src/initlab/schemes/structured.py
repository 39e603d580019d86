"""Structured schemes: identity-like matrices and kernels, ZerO, sparse, and a scaling wrapper.

* ``identity`` — gain on the main diagonal (block by block for packed parameters);
* ``eye`` / ``dirac`` — exactly ``torch.nn.init.eye_`` / ``dirac_``;
* ``zero_hadamard`` (alias ``zer_o``) — ZerO (Zhao et al. 2021): identities and Hadamard
  matrices, only zeros and ones up to one scale;
* ``sparse`` — Martens 2010, ``torch.nn.init.sparse_``;
* ``scaled`` — any scheme times a factor (Fixup's branch scaling, with :func:`fixup_scale`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor

from ..fans import Fans
from ..rng import RandomSource
from .base import Scheme, as_real, check_finite, check_nonneg, get_scheme, register_scheme


def _check_int(scheme: str, what: str, value: Any, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{scheme}: {what} must be an int >= {least}, got {value!r}")


@register_scheme
@dataclasses.dataclass(frozen=True)
class Identity(Scheme):
    """gain on the main diagonal of the leading square block, 0 elsewhere: gain · eye(rows, cols).

    2-D only (for convolution kernels use ``dirac``). Packed parameters (e.g. an LSTM's
    ``weight_hh`` with fans listing the gates) get one identity per block, the IRNN-style
    choice for each gate; without blocks the result is ``gain * torch.eye(*shape)``.

    Paper: Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of
    Rectified Linear Units" (identity recurrent matrix), https://arxiv.org/abs/1504.00941

    Args:
        gain: the value on the diagonal (finite).

    Example:
        >>> Identity(gain=2.0)(torch.empty(2, 3))
        tensor([[2., 0., 0.],
                [0., 2., 0.]])
    """

    name = "identity"
    formula = "W = gain · I(rows, cols)"
    paper = "Le et al. 2015 (arXiv:1504.00941)"
    uses_fans = True
    deterministic = True
    ndims = (2,)
    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", check_finite(self.name, "gain", self.gain))

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        t.zero_()
        t.diagonal().fill_(self.gain)


@register_scheme
@dataclasses.dataclass(frozen=True)
class Eye(Scheme):
    """The identity matrix on the leading square block, exactly ``torch.nn.init.eye_``.

    2-D only (ValueError otherwise, as torch). Packed blocks are ignored (one eye over the
    whole tensor, as torch); use ``identity`` for one identity per block or a gain.

    Example:
        >>> Eye()(torch.empty(3, 2))
        tensor([[1., 0.],
                [0., 1.],
                [0., 0.]])
    """

    name = "eye"
    formula = "W = I(rows, cols)"
    paper = "-"
    deterministic = True
    ndims = (2,)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        # as torch: eye(out=) would otherwise reset requires_grad on a leaf parameter
        torch.eye(*t.shape, out=t, requires_grad=t.requires_grad)


@register_scheme
@dataclasses.dataclass(frozen=True)
class Dirac(Scheme):
    """Dirac delta kernel, exactly ``torch.nn.init.dirac_(t, groups)``.

    For a kernel [out, in, *k] (3-, 4- or 5-D): zero except
    ``W[g·out/groups + d, d, k//2, ...] = 1`` for every group g and d < min(out/groups, in), so
    the convolution copies as many input channels of each group as it can. dim 0 must be
    divisible by ``groups`` (ValueError otherwise, before anything is written).

    Args:
        groups: the convolution's groups (>= 1; dim 0 must be divisible by it).

    Example:
        >>> w = Dirac(groups=2)(torch.empty(4, 2, 3))
        >>> w[:, :, 1]  # the centre tap: the identity in each group
        tensor([[1., 0.],
                [0., 1.],
                [1., 0.],
                [0., 1.]])
    """

    name = "dirac"
    formula = "W[g·out/G + d, d, k//2, ...] = 1, else 0"
    paper = "-"
    deterministic = True
    ndims = (3, 4, 5)
    groups: int = 1

    def __post_init__(self) -> None:
        _check_int(self.name, "groups", self.groups, 1)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        super().check_shape(shape)
        if shape[0] % self.groups:
            raise ValueError(
                f"{self.name}: dim 0 must be divisible by groups, got shape {shape} with "
                f"groups={self.groups}; pass the groups of the conv layer the weight belongs to"
            )

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        out, inn = t.shape[0], t.shape[1]
        per = out // self.groups
        t.zero_()
        d = torch.arange(min(per, inn), device=t.device)
        rows = (torch.arange(self.groups, device=t.device)[:, None] * per + d).reshape(-1)
        cols = d.repeat(self.groups)
        centre = tuple(k // 2 for k in t.shape[2:])
        t[(rows, cols, *centre)] = 1


def _groups(scheme: str, fans: Fans | None) -> int:
    g = fans.attr("groups", 1) if fans is not None else 1
    if not isinstance(g, int) or isinstance(g, bool) or g < 1:
        raise ValueError(f"{scheme}: fans attribute groups must be an int >= 1, got {g!r}")
    return g


def zero_matrix(m: int, n: int) -> Tensor:
    """The ZerO matrix for a weight [m, n] (m = out, n = in), in float64.

    m <= n: eye(m, n). m > n: with c = ceil(log2 m) and p = 2^c,
    ``I(m, p) · H_p / 2^(c/2) · I(p, n)``, i.e. the top-left [m, n] block of the Sylvester
    Hadamard matrix divided by sqrt(p): entry (i, j) is (-1)^popcount(i & j) / 2^(c/2).
    Zhao et al. 2021, https://arxiv.org/abs/2110.12661

    Args:
        m: the number of rows (outputs).
        n: the number of columns (inputs).

    Returns:
        A float64 tensor [m, n].

    Example:
        >>> zero_matrix(3, 2) * 2  # c = 2: entries ±1/2
        tensor([[ 1.,  1.],
                [ 1., -1.],
                [ 1.,  1.]], dtype=torch.float64)
    """
    if m <= n:
        return torch.eye(m, n, dtype=torch.float64)
    c = (m - 1).bit_length()  # ceil(log2 m) for m >= 2, exact in integers
    x = torch.arange(m)[:, None] & torch.arange(n)[None, :]
    parity = torch.zeros_like(x)
    while bool(x.any()):
        parity ^= x & 1
        x = x >> 1
    return (1 - 2 * parity).to(torch.float64) * (2.0 ** (-c / 2))


@register_scheme(aliases=("zer_o",))
@dataclasses.dataclass(frozen=True)
class ZerO(Scheme):
    """ZerO initialisation: deterministic, only zeros and ones (and one Hadamard scale).

    For a weight W [m, n] (m = out, n = in)::

        m <= n:  W = I(m, n)                                   (partial identity)
        m >  n:  W = I(m, p) · H_p / 2^(c/2) · I(p, n),  c = ceil(log2 m), p = 2^c

    with H_p the Sylvester Hadamard matrix (entries ±1, H_p H_pᵀ = p·I). For m > n the
    entries are ±2^(-c/2), every column has norm sqrt(m/p) (1 when m is a power of two, then
    the columns are orthonormal) and the columns are linearly independent, so the expanding
    layer is injective and, unlike a partial identity (whose extra m - n rows would be zero),
    gives every output unit a distinct non-zero row (the paper's remedy for the "training
    degeneracy" of identity initialisation in dimension-increasing layers).
    Convolution kernels [out, in, *k] (3- to 5-D) get this matrix on the spatial centre tap
    (index k//2 per spatial dim) and zeros elsewhere (the paper's Algorithm 2 for convs).
    Packed parameters get one ZerO matrix per block. Biases should be zero (use ``zeros``).

    Paper: Zhao, Schäfer & Anandkumar 2021, "ZerO Initialization: Initializing Neural Networks
    with only Zeros and Ones" (TMLR 2022), https://arxiv.org/abs/2110.12661

    Example:
        >>> w = ZerO()(torch.empty(3, 2))  # c = ceil(log2 3) = 2, p = 4: H_4 rows 0-2, cols 0-1
        >>> w * 2
        tensor([[ 1.,  1.],
                [ 1., -1.],
                [ 1.,  1.]])
        >>> ZerO()(torch.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """

    name = "zero_hadamard"
    formula = "W = I(m,n) if m <= n else I(m,p)·H_p/2^(c/2)·I(p,n), c = ceil(log2 m)"
    paper = "Zhao et al. 2021 (arXiv:2110.12661)"
    uses_fans = True
    deterministic = True
    ndims = (2, 3, 4, 5)

    def validate(self, shape: tuple[int, ...], fans: Fans | None = None) -> Fans | None:
        fans = super().validate(shape, fans)
        groups = _groups(self.name, fans)
        if groups > 1 and (len(shape) < 3 or shape[0] % groups):
            raise ValueError(
                f"{self.name}: fans say groups={groups}, which needs a conv kernel whose dim 0 "
                f"is divisible by groups; got shape {tuple(shape)}"
            )
        return fans

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        groups = _groups(self.name, fans) if t.dim() > 2 else 1
        per = t.shape[0] // groups
        # grouped conv [out, in/groups, *k]: one ZerO matrix [out/groups, in/groups] per group
        # (depthwise: 1 x 1, the identity per channel)
        mat = zero_matrix(per, t.shape[1])
        if t.dim() == 2:
            t.copy_(mat)
            return
        t.zero_()
        centre = tuple(k // 2 for k in t.shape[2:])
        m = mat.to(device=t.device, dtype=t.dtype)
        for g in range(groups):
            t[(slice(g * per, (g + 1) * per), slice(None), *centre)] = m


@register_scheme
@dataclasses.dataclass(frozen=True)
class Sparse(Scheme):
    """N(0, std²) entries with ceil(sparsity·rows) zeros in every column (torch.nn.init.sparse_).

    2-D only (ValueError otherwise, before anything is written). Draws ``normal_(0, std)``
    over the whole tensor, then for each column the first ceil(sparsity·rows) indices of a
    ``randperm(rows)`` are zeroed. With generator None this is bit-identical to
    ``torch.nn.init.sparse_`` (both use the global generator, also for the permutations).
    With a torch.Generator, the permutations come from that generator too (torch draws them
    from the global generator even then), so the result depends on the generator alone.
    Every column's expected squared norm is std²·(rows - ceil(sparsity·rows)).

    Paper: Martens 2010, "Deep learning via Hessian-free optimization" (ICML),
    https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf

    Args:
        sparsity: the fraction of each column set to zero, in [0, 1].
        std: the standard deviation of the normal values (>= 0).

    Example:
        >>> w = Sparse(0.5, std=1.0)(torch.empty(4, 3), generator=torch.Generator().manual_seed(0))
        >>> (w == 0).sum(dim=0)
        tensor([2, 2, 2])
    """

    name = "sparse"
    formula = "W ~ N(0, std²), ceil(sparsity·rows) random zeros per column"
    paper = "Martens 2010 (ICML)"
    ndims = (2,)
    sparsity: float
    std: float = 0.01

    def __post_init__(self) -> None:
        s = as_real(self.sparsity)
        if isinstance(self.sparsity, bool) or s is None or not 0.0 <= s <= 1.0:
            raise ValueError(
                f"{self.name}: sparsity is the fraction of each column set to zero and must "
                f"lie in [0, 1], got {self.sparsity!r}"
            )
        object.__setattr__(self, "sparsity", s)
        object.__setattr__(self, "std", check_nonneg(self.name, "std", self.std))

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        rows, cols = t.shape
        num_zeros = math.ceil(self.sparsity * rows)
        rng.normal_(t, 0.0, self.std)
        # one randperm per column, even when num_zeros is 0: the same draws as torch
        idx = [rng.randperm(rows)[:num_zeros] for _ in range(cols)]
        if num_zeros:
            index = torch.stack(idx, dim=1).to(t.device)
            t.scatter_(0, index, 0.0)


def fixup_scale(num_branches: int, layers_per_branch: int) -> float:
    """Fixup's factor L^(-1/(2m-2)) for the He-initialised layers of each residual branch.

    Args:
        num_branches: L, the number of residual branches in the network (>= 1).
        layers_per_branch: m, the number of layers in each branch (>= 2; Fixup zero-inits
            the last one and scales the others).

    Use as ``Scaled(KaimingNormal(...), fixup_scale(L, m))``. Zhang, Dauphin & Ma 2019,
    "Fixup Initialization: Residual Learning Without Normalization",
    https://arxiv.org/abs/1901.09321

    Returns:
        L^(-1/(2m-2)) as a float.

    Example:
        >>> fixup_scale(16, 2)  # 16 branches of 2 layers: 16^(-1/2)
        0.25
        >>> s = Scaled(get_scheme("kaiming_normal", nonlinearity="relu"), fixup_scale(16, 2))
        >>> s.factor
        0.25
    """
    _check_int("fixup_scale", "num_branches", num_branches, 1)
    if not isinstance(layers_per_branch, int) or isinstance(layers_per_branch, bool):
        raise ValueError(
            f"fixup_scale: layers_per_branch must be an int, got {layers_per_branch!r}"
        )
    if layers_per_branch < 2:
        raise ValueError(
            f"fixup_scale: layers_per_branch must be >= 2 (the exponent is -1/(2m-2)), got "
            f"{layers_per_branch}; a one-layer branch has no layer to rescale, zero-init it"
        )
    return float(num_branches) ** (-1.0 / (2 * layers_per_branch - 2))


@register_scheme
@dataclasses.dataclass(frozen=True)
class Scaled(Scheme):
    """``base`` followed by multiplication by ``factor``: W = factor · base(W).

    Calling a Scaled scheme calls ``base`` (with its own validation, fans, packed blocks and
    layout handling) and then multiplies the tensor in place, so packed parameters are filled
    block by block exactly when ``base`` does that. ``uses_fans``, ``deterministic`` and
    ``ndims`` are the base's (set on the instance). ``base`` may be given as a Scheme, a
    registered name or a config dict; the config nests it:
    ``{"name": "scaled", "base": {"name": ..., ...}, "factor": ...}``.

    Fixup (Zhang et al. 2019): He-initialise the layers of each residual branch and scale them
    by L^(-1/(2m-2)) (L branches, m layers per branch), zero-init each branch's last layer and
    the classifier: ``Scaled(KaimingNormal(), fixup_scale(L, m))``.
    Paper: https://arxiv.org/abs/1901.09321

    Args:
        base: the scheme to scale (a Scheme, a registered name or a config dict).
        factor: the multiplier (finite).

    Example:
        >>> s = Scaled("ones", 0.5)
        >>> s(torch.empty(3))
        tensor([0.5000, 0.5000, 0.5000])
        >>> s.to_config()
        {'name': 'scaled', 'base': {'name': 'ones'}, 'factor': 0.5}
    """

    name = "scaled"
    formula = "W = factor · base(W)"
    paper = "Zhang et al. 2019, Fixup (arXiv:1901.09321)"
    base: Scheme
    factor: float

    def __post_init__(self) -> None:
        base = self.base
        if isinstance(base, (str, dict)):
            base = get_scheme(base)
            object.__setattr__(self, "base", base)
        if not isinstance(base, Scheme):
            raise ValueError(
                f"{self.name}: base must be a Scheme, a scheme name or a config dict, "
                f"got {type(base).__name__}"
            )
        object.__setattr__(self, "factor", check_finite(self.name, "factor", self.factor))
        # mirror the base's class-level properties on this instance
        object.__setattr__(self, "uses_fans", base.uses_fans)
        object.__setattr__(self, "deterministic", base.deterministic)
        object.__setattr__(self, "ndims", base.ndims)
        object.__setattr__(self, "elementwise", base.elementwise)

    def __call__(
        self,
        tensor: Tensor,
        fans: Fans | None = None,
        generator: Any = None,
    ) -> Tensor:
        self.base(tensor, fans, generator)
        if not tensor.is_meta and tensor.numel() > 0:
            with torch.no_grad():
                tensor.mul_(self.factor)
        return tensor

    def check_shape(self, shape: tuple[int, ...]) -> None:
        self.base.check_shape(shape)

    def validate(self, shape: tuple[int, ...], fans: Fans | None = None) -> Fans | None:
        return self.base.validate(shape, fans)

    def check_source(self, kind: str) -> None:
        self.base.check_source(kind)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        self.base.fill(t, fans, rng)
        t.mul_(self.factor)

    def target_std(self, fans: Fans | None) -> float | None:
        s = self.base.target_std(fans)
        return None if s is None else abs(self.factor) * s
