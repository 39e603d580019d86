"""Orthogonal schemes: (semi-)orthogonal matrices (Saxe et al. 2013) and delta-orthogonal
convolution kernels (Xiao et al. 2018).

Both draw their matrices the way ``torch.nn.init.orthogonal_`` does::

    G ~ N(0, 1) of shape (rows, cols)          rows = dim 0, cols = product of the others
    Q, R = qr(G)            (on Gᵀ when rows < cols, transposed back afterwards)
    Q <- Q · sign(diag(R))  (makes Q Haar-distributed; Mezzadri 2007)
    W = gain · Q

so for float32/float64 tensors and a ``torch.Generator`` (or torch's global generator) the
values are bit-identical to torch's. With keyed streams the QR runs on one intra-op thread, so
the values do not depend on the thread count (LAPACK's QR rounds differently on several). QR
has no float16/bfloat16 kernel on CPU: for those dtypes (and any other floating dtype) the
matrix is drawn and factorised in float32 and the float32 result is cast, so the values equal
the float32 scheme's output cast to the dtype.

A zero on the diagonal of R (probability zero for a Gaussian draw) has sign 0 and zeroes
the corresponding column of Q; torch does the same, and initlab keeps that behaviour for
parity rather than substituting +1.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ..fans import Fans
from ..rng import RandomSource
from .base import Scheme, check_finite, register_scheme

_NATIVE_DTYPES = (torch.float32, torch.float64)


def _torch_orthogonal_(tensor: Tensor, gain: float, rng: RandomSource) -> None:
    """torch.nn.init.orthogonal_'s arithmetic, step for step, on a contiguous float32/64 tensor."""
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    flattened = tensor.new_empty((rows, cols))
    rng.normal_(flattened, 0.0, 1.0)
    if rows < cols:
        flattened.t_()
    q, r = _qr_one_thread(flattened) if rng.addressable else torch.linalg.qr(flattened)
    d = torch.diag(r, 0)
    ph = d.sign()
    q *= ph
    if rows < cols:
        q.t_()
    tensor.view_as(q).copy_(q)
    tensor.mul_(gain)


def _qr_one_thread(a: Tensor) -> tuple[Tensor, Tensor]:
    """QR on one intra-op thread: LAPACK's blocked QR rounds differently on one thread and on
    several (up to ~1e-6 at 128 x 128, tested), and keyed values must not depend on the
    machine's cores. A torch.Generator source keeps torch's own threading, for parity."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.qr(a)
    finally:
        torch.set_num_threads(before)


def orthogonal_fill_(t: Tensor, gain: float, rng: RandomSource) -> None:
    """Fill the contiguous tensor ``t`` (ndim >= 2, numel > 0) with gain · a (semi-)orthogonal
    matrix of shape (t.shape[0], prod(t.shape[1:])).

    float32/float64 follow torch exactly; other floating dtypes are computed in float32 and cast.

    Args:
        t: the contiguous floating-point tensor, filled in place.
        gain: the scaling factor.
        rng: the random source of the Gaussian matrix.

    Example:
        >>> from initlab.rng import TorchSource
        >>> t = torch.empty(2, 3)
        >>> orthogonal_fill_(t, 1.0, TorchSource(torch.Generator().manual_seed(0)))
        >>> torch.allclose(t @ t.T, torch.eye(2), atol=1e-6)
        True
    """
    _check_float("orthogonal", t)
    if t.dtype in _NATIVE_DTYPES:
        _torch_orthogonal_(t, gain, rng)
    else:
        tmp = torch.empty(t.shape, dtype=torch.float32, device=t.device)
        _torch_orthogonal_(tmp, gain, rng)
        t.copy_(tmp)


def _check_float(scheme: str, t: Tensor) -> None:
    if not t.is_floating_point():
        raise TypeError(
            f"{scheme}: needs a floating-point tensor, got dtype {t.dtype}; "
            f"initialise a float tensor and convert it"
        )


@register_scheme
@dataclasses.dataclass(frozen=True)
class Orthogonal(Scheme):
    """gain · a (semi-)orthogonal matrix, dims after the first flattened (torch's orthogonal_).

    For W of shape [r, c] (c = product of the trailing dims): W = gain·Q with Q from the QR
    decomposition of G ~ N(0, 1) times sign(diag R), so W Wᵀ = gain² I when r <= c and
    WᵀW = gain² I when r >= c. Packed parameters (LSTM/GRU gates, attention q/k/v) are filled
    block by block, so every block is itself orthogonal (the whole need not be).

    Bit-identical to ``torch.nn.init.orthogonal_(t, gain, generator)`` for float32/float64 on
    a torch.Generator or the global generator (an unpacked tensor, or each block as its own
    call). float16/bfloat16: computed in float32 and cast (see the module docstring).

    Paper: Saxe, McClelland & Ganguli 2013, "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks", https://arxiv.org/abs/1312.6120

    Args:
        gain: the scaling factor (finite).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = Orthogonal(gain=0.5)(torch.empty(6, 2, 2), generator=g)
        >>> m = w.reshape(6, 4)
        >>> torch.allclose(m.T @ m, 0.25 * torch.eye(4), atol=1e-6)
        True
    """

    name = "orthogonal"
    formula = "W = gain · Q, Q from QR of G ~ N(0,1)[rows, cols], Q·sign(diag R)"
    paper = "Saxe et al. 2013 (arXiv:1312.6120)"
    uses_fans = True
    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", check_finite(self.name, "gain", self.gain))

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) < 2:
            raise ValueError(
                f"{self.name}: needs a tensor with at least 2 dimensions (dim 0 = rows, the "
                f"others flattened into columns), got shape {shape}; for a bias use "
                f"'zeros' or 'constant'"
            )

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        orthogonal_fill_(t, self.gain, rng)


def _conv_groups(fans: Fans | None) -> int:
    g = fans.attr("groups", 1) if fans is not None else 1
    if not isinstance(g, int) or isinstance(g, bool) or g < 1:
        raise ValueError(f"delta_orthogonal: fans attribute groups must be an int >= 1, got {g!r}")
    return g


@register_scheme
@dataclasses.dataclass(frozen=True)
class DeltaOrthogonal(Scheme):
    """Delta-orthogonal conv kernel [out, in, *k]: zero except the centre tap, gain · Q there.

    W[:, :, k//2, ...] = gain·Q with Q an [out, in] matrix with orthonormal columns (QᵀQ = I);
    every other tap is 0. Requires in <= out (the paper's condition c_out >= c_in, Xiao et al.
    2018, Algorithm 2): then the layer maps every input pixel's channel vector x to gain · Q x,
    so with in == out, an **odd** kernel size and "same" zero padding (or circular padding) it
    preserves the norm of its input exactly, times |gain|. Norm preservation holds for odd
    kernels only: an even kernel has no centre, the tap at k//2 is off-centre, and with "same"
    zero padding the output is shifted and the border lost. A kernel with in > out raises
    ValueError: no centre tap can be an isometry there; use ``orthogonal`` (semi-orthogonal
    over the flattened kernel) instead.

    The centre matrix is drawn exactly like ``Orthogonal`` on an [out, in] tensor, so it is
    bit-identical to ``torch.nn.init.orthogonal_(torch.empty(out, in), gain, generator)`` for
    float32/float64. Grouped convolutions: when the fans carry ``groups`` (``fans.attr``),
    each group's [out/groups, in/groups] centre block is drawn separately (the others are 0),
    which needs in/groups <= out/groups. ConvTranspose weights are stored [in, out/groups, *k]:
    the centre is then a matrix with orthonormal columns over that layout, an isometry of the
    transposed layer only when it is square.

    Paper: Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018, "Dynamical Isometry and
    a Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural
    Networks", https://arxiv.org/abs/1806.05393

    Args:
        gain: the scaling factor (finite).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = DeltaOrthogonal()(torch.empty(8, 4, 3, 3), generator=g)
        >>> q = w[:, :, 1, 1]  # the centre tap: orthonormal columns
        >>> torch.allclose(q.T @ q, torch.eye(4), atol=1e-6), int((w != 0).sum()) == q.numel()
        (True, True)
    """

    name = "delta_orthogonal"
    formula = "W[:, :, k//2...] = gain · Q (QᵀQ = I, [out, in]); all other taps 0"
    paper = "Xiao et al. 2018 (arXiv:1806.05393)"
    ndims = (3, 4, 5)
    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", check_finite(self.name, "gain", self.gain))

    def validate(self, shape: tuple[int, ...], fans: Fans | None = None) -> Fans | None:
        """All shape checks (groups included) before any tensor is touched."""
        fans = super().validate(shape, fans)
        out, inn = shape[0], shape[1]
        groups = _conv_groups(fans)
        if out % groups:
            raise ValueError(
                f"{self.name}: out_channels {out} (dim 0 of shape {tuple(shape)}) is not "
                f"divisible by groups={groups}"
            )
        if groups == 1 and inn > out:
            raise ValueError(
                f"{self.name}: needs in_channels <= out_channels (shape[1] <= shape[0]) so the "
                f"centre tap can have orthonormal columns (Xiao et al. 2018 require "
                f"c_out >= c_in), got shape {tuple(shape)}; use 'orthogonal' for a contracting "
                f"layer"
            )
        if inn > out // groups:
            raise ValueError(
                f"{self.name}: with groups={groups} each group's centre block is "
                f"[out/g, in/g] = [{out // groups}, {inn}], which needs out/g >= in/g so it "
                f"can have orthonormal columns; got shape {tuple(shape)}; use 'orthogonal' "
                f"for a contracting layer"
            )
        return fans

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        _check_float(self.name, t)
        inn = t.shape[1]
        groups = _conv_groups(fans)
        per = t.shape[0] // groups
        centre = tuple(k // 2 for k in t.shape[2:])
        t.zero_()
        for g in range(groups):
            m = torch.empty((per, inn), dtype=t.dtype, device=t.device)
            orthogonal_fill_(m, self.gain, rng)
            t[(slice(g * per, (g + 1) * per), slice(None), *centre)] = m
