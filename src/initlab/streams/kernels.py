"""Chunk kernels: fill one chunk's values (``dst``) from its words, per distribution."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["Kernel", "Normal", "Scratch", "Sums", "TruncNormal", "Uniform", "sums_of"]

_NDTRI_BLOCK = 1 << 14  # below torch's parallel grain size (32768): ndtri runs inline
TAIL_LIMIT = 37.0  # Φ(-37) ~ 6e-300: beyond this the float64 inversion underflows
Sums = list[tuple[float, float]]  # per kernel call: sum of x - center, of its square


class Scratch(dict):
    """One thread's work buffers, by name (numpy arrays, and torch views of them).

    Example:
        >>> tmp = Scratch()
        >>> a = tmp.get_array("work", 4, np.float32)
        >>> b = tmp.get_array("work", 2, np.float32)  # reused, not reallocated
        >>> b.shape, np.shares_memory(a, b)
        ((2,), True)
    """

    def get_array(self, name: str, n: int, dtype: type) -> np.ndarray:
        """The first ``n`` elements of buffer ``name`` (made, or grown, on demand)."""
        a = self.get(name)
        if a is None or a.size < n or a.dtype != dtype:
            a = self[name] = np.empty(n, dtype)
        return a[:n]


def _tview(a: np.ndarray) -> Tensor:
    return torch.from_numpy(a)


class Kernel:
    """Base of the chunk kernels: fill one chunk's values from its words.

    ``dtype``: what the kernel writes (float32 or float64); ``word``: the words it reads
    (uint32 for float32 output, uint64 for float64); ``center``: a value near the law's mean,
    about which moments are summed. Subclasses implement ``__call__(words, dst, tmp, sums)``.

    Args:
        f64: write float64 values from 64-bit words (else float32 from 32-bit words).

    Example:
        >>> from initlab.streams.bits import Keystream, read_words
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> ks = Keystream(draw_key(derive_key(0, "w"), 0))
        >>> kern = Kernel(f64=False)
        >>> words = read_words(ks, 0, bytearray(4 * 4 + 16), 4, kern.word)
        >>> k = np.empty(4, np.float32)
        >>> kern.ints(words.copy(), k)  # the top 24 bits of each word
        >>> bool((k == (words >> 8)).all()), kern.dtype.__name__
        (True, 'float32')
    """

    center = 0.0

    def __init__(self, f64: bool) -> None:
        self.f64 = f64
        self.dtype: type = np.float64 if f64 else np.float32
        self.word = np.dtype(np.uint64 if f64 else np.uint32)

    def ints(self, words: np.ndarray, dst: np.ndarray) -> None:
        """dst <- k as floats: the top 53 bits of each 64-bit word or 24 of each 32-bit one."""
        if self.f64:
            np.right_shift(words, 11, out=words)
            np.copyto(dst, words.view(np.int64), casting="unsafe")  # exact: < 2**53
        else:
            np.right_shift(words, 8, out=words)
            np.copyto(dst, words.view(np.int32), casting="unsafe")  # exact: < 2**24

    def __call__(
        self,
        words: np.ndarray,
        dst: np.ndarray,
        tmp: Scratch,
        sums: Sums | None = None,
        chunk: int | None = None,
    ) -> None:
        """Fill ``dst`` from ``words``: one chunk, or several whole chunks of ``chunk``
        elements in one call (the same values as chunk by chunk: fewer, longer numpy calls,
        so fill threads hand the GIL to each other less often). With ``sums``, append the
        sums of ``dst - center`` and of its square (see :func:`sums_of`)."""
        raise NotImplementedError


class Uniform(Kernel):
    """Uniform values: ``low + span·u`` with ``u = (k >> 8)·2⁻²⁴`` (float64: ``(k >> 11)·2⁻⁵³``).

    ``span`` = high − low, rounded to the dtype with 2⁻ᵇ folded in exactly. May round to high.

    Args:
        low: the lower bound.
        high: the upper bound.
        f64: float64 output (else float32).

    Example:
        >>> from initlab.streams.bits import Keystream, read_words
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> ks = Keystream(draw_key(derive_key(0, "w"), 0))
        >>> kern = Uniform(0.0, 1.0, f64=False)
        >>> words = read_words(ks, 0, bytearray(64 * 4 + 16), 64, kern.word)
        >>> u = (words[:2] >> 8) * 2.0**-24
        >>> dst = np.empty(64, np.float32)
        >>> kern(words.copy(), dst, Scratch())
        >>> bool((dst[:2] == u).all()), dst[:2].tolist()
        (True, [0.04490870237350464, 0.1514464020729065])
    """

    def __init__(self, low: float, high: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.low, self.scale = ft(low), ft(high - low) * ft(2.0 ** (-53 if f64 else -24))
        self.center = 0.5 * (low + high)

    def __call__(
        self,
        words: np.ndarray,
        dst: np.ndarray,
        tmp: Scratch,
        sums: Sums | None = None,
        chunk: int | None = None,
    ) -> None:
        self.ints(words, dst)
        np.multiply(dst, self.scale, out=dst)
        if self.low != 0:  # adding +0.0 would change nothing (span * u is never -0.0)
            np.add(dst, self.low, out=dst)
        if sums is not None:
            sums.append(sums_of(dst, self.center, tmp))


class Normal(Kernel):
    """Normal values by Box–Muller, both outputs used.

    In a chunk of C elements (h = C/2), pair ``j`` takes words ``j`` and ``j + h``:
    ``u1 = ((k_j >> 8) + 1)·2⁻²⁴`` in (0, 1], ``θ = (k_(j+h) >> 8)·fl(2π·2⁻²⁴)``,
    ``r = sqrt(−2·std²·ln u1)``; element ``j`` = mean + r cos θ and element ``h + j`` =
    mean + r sin θ (float64: 53-bit integers). log, cos and sin are numpy's SIMD kernels
    (float64 cos and sin: torch's; numpy's are scalar there). Box & Muller 1958, "A Note on the
    Generation of Random Normal Deviates", https://doi.org/10.1214/aoms/1177706645

    Args:
        mean: the mean.
        std: the standard deviation.
        f64: float64 output (else float32).

    Example:
        >>> from initlab.streams.bits import Keystream, read_words
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> ks = Keystream(draw_key(derive_key(0, "w"), 0))
        >>> n = 1 << 16
        >>> words = read_words(ks, 0, bytearray(n * 4 + 16), n, np.dtype(np.uint32))
        >>> dst, sums = np.empty(n, np.float32), []
        >>> Normal(0.0, 1.0, f64=False)(words.copy(), dst, Scratch(), sums)
        >>> round(float(dst.std()), 2), round(sums[0][1] / n, 2)  # std; mean square from the sums
        (1.0, 1.0)
    """

    def __init__(self, mean: float, std: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.mean, self.std = ft(mean), ft(std)
        self.center = float(mean)
        self.unit = ft(2.0 ** (-53 if f64 else -24))
        self.angle = ft(2.0 * math.pi * float(self.unit))
        # r = sqrt(-2·std²·ln u1) in one multiply when std² is a normal number of the dtype
        self.var = float(self.std) * float(self.std)  # inf past float64's range, not an error
        self.fold = float(np.finfo(ft).tiny) <= self.var < float(np.finfo(ft).max)
        self.r_scale = ft(-2.0 * self.var) if self.fold else ft(-2.0)

    def __call__(
        self,
        words: np.ndarray,
        dst: np.ndarray,
        tmp: Scratch,
        sums: Sums | None = None,
        chunk: int | None = None,
    ) -> None:
        ft, n = self.dtype, dst.size
        k = 1 if chunk is None else n // chunk  # whole chunks: each pairs its own halves
        h = n // k // 2
        u = tmp.get_array("work", n, ft).reshape(k, 2, h)
        r, th = u[:, 0], u[:, 1]
        out = dst.reshape(k, 2, h)
        self.ints(words, u.reshape(-1))
        np.multiply(r, self.unit, out=r)
        np.add(r, self.unit, out=r)  # u1 = (k + 1)·2⁻ᵇ in (0, 1], exact
        np.log(r, out=r)
        np.multiply(r, self.r_scale, out=r)
        if sums is not None:  # x - mean = r cos θ, r sin θ: the squares of a pair sum to r²
            sq = float(torch.sum(_tview(r))) * (1.0 if self.fold else self.var)
        np.sqrt(r, out=r)
        if not self.fold and self.std != 1:
            np.multiply(r, self.std, out=r)
        np.multiply(th, self.angle, out=th)  # θ = k·(2π·2⁻ᵇ), rounded once
        if self.f64:  # numpy's float64 sin/cos are scalar libm calls: torch's are vectorised
            tth = _tview(th)
            torch.cos(tth, out=_tview(out[:, 0]))
            torch.sin(tth, out=_tview(out[:, 1]))
        else:  # numpy's SIMD float32 kernels: ~2.5x torch's here (AVX-512)
            np.cos(th, out=out[:, 0])
            np.sin(th, out=out[:, 1])
        np.multiply(out, r[:, None], out=out)  # r cos θ | r sin θ
        if sums is not None:  # torch's sum: vectorised cascade, ~2x numpy's pairwise here
            sums.append((float(torch.sum(_tview(dst))), sq))
        if self.mean != 0:
            np.add(dst, self.mean, out=dst)


class TruncNormal(Kernel):
    """Standard normal conditioned on [a, b], by exact inversion in float64 for every dtype.

    ``v = ((k >> 12) + 0.5)·2⁻⁵²`` in (0, 1) from 64-bit words, ``x = ndtri(Φ(lo) + (Φ(hi) −
    Φ(lo))·v)`` with [lo, hi] = [a, b], or [−b, −a] and x negated when a + b > 0 (so the far
    tail is the lower one, where small probabilities keep relative precision), then clipped to
    ``clip`` (only against rounding). Intervals beyond 37 std (where Φ underflows) raise
    ValueError.

    Args:
        a: the lower bound in standard deviations.
        b: the upper bound in standard deviations.
        clip: [a, b] rounded inward to the output dtype.
        f64: float64 output (else float32).

    Example:
        >>> from initlab.streams.bits import Keystream, read_words
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> ks = Keystream(draw_key(derive_key(0, "w"), 0))
        >>> n = 1 << 16
        >>> words = read_words(ks, 0, bytearray(n * 8 + 16), n, np.dtype(np.uint64))
        >>> dst = np.empty(n)
        >>> TruncNormal(-2.0, 2.0, (-2.0, 2.0), f64=True)(words.copy(), dst, Scratch())
        >>> bool(dst.min() >= -2 and dst.max() <= 2), round(float(dst.std()), 3)  # 0.8796
        (True, 0.88)
    """

    def __init__(self, a: float, b: float, clip: tuple[float, float], f64: bool) -> None:
        super().__init__(f64)
        self.word = np.dtype(np.uint64)  # float64 inversion on 52-bit uniforms for every dtype
        self.sign = -1.0 if a + b > 0 else 1.0
        lo, hi = (-b, -a) if self.sign < 0 else (a, b)
        if hi < -TAIL_LIMIT:
            msg = f"[{a}, {b}] lies beyond {TAIL_LIMIT:g} std, where float64 Φ underflows"
            raise ValueError(f"trunc_normal_: {msg}")
        p_lo, p_hi = (0.5 * math.erfc(-v / math.sqrt(2.0)) for v in (lo, hi))
        self.p_lo, self.scale = p_lo, (p_hi - p_lo) * 2.0**-52
        self.clip = clip
        self.center = min(max(0.0, a), b)  # a point of [a, b]: the sums are taken about it

    def __call__(
        self,
        words: np.ndarray,
        dst: np.ndarray,
        tmp: Scratch,
        sums: Sums | None = None,
        chunk: int | None = None,
    ) -> None:
        n = dst.size
        x = tmp.get_array("t", n, np.float64)
        np.right_shift(words, 12, out=words)
        np.copyto(x, words.view(np.int64), casting="unsafe")
        np.add(x, 0.5, out=x)  # exact: < 2**53
        np.multiply(x, self.scale, out=x)
        np.add(x, self.p_lo, out=x)
        xt = _tview(x)
        for s in range(0, n, _NDTRI_BLOCK):
            blk = xt[s : s + _NDTRI_BLOCK]
            torch.special.ndtri(blk, out=blk)
        if self.sign < 0:
            np.negative(x, out=x)
        np.clip(x, self.clip[0], self.clip[1], out=dst)  # clip bounds are dst's values
        if sums is not None:
            sums.append(sums_of(dst, self.center, tmp))


def sums_of(x: np.ndarray, center: float, tmp: Scratch) -> tuple[float, float]:
    """(sum of x - center, sum of its square), by numpy's pairwise sums in x's precision
    (MKL's dot loses up to ~1e-6 here), to be added up in float64 across chunks.

    Args:
        x: the values.
        center: the point the sums are taken about.
        tmp: work buffers.

    Returns:
        ``(Σ(x − center), Σ(x − center)²)`` as floats.

    Example:
        >>> sums_of(np.array([1.0, 2.0, 3.0], np.float32), 2.0, Scratch())
        (0.0, 2.0)
    """
    buf = tmp.get_array("work", x.size, x.dtype.type)
    d = x if center == 0 else np.subtract(x, center, out=buf)
    s1 = float(np.add.reduce(d))
    return s1, float(np.add.reduce(np.multiply(d, d, out=buf)))
