"""KeyedStream: the RandomSource over keys, bits, kernels, chunks and windows."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import operator
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from .bits import Keystream, read_words
from .chunks import CH, chunk_size, generate
from .kernels import Kernel, Normal, Sums, TruncNormal, Uniform
from .keys import derive_key, draw_key, hash128
from .window import Window

__all__ = ["KeyedStream"]

PIECE = 1 << 22  # elements per piece when the target is not written in place (bf16, CUDA)
_TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
_fills = itertools.count(1)  # numbers every fill that writes, in any stream and thread
_last_fill = 0  # the number of the latest such fill


@dataclasses.dataclass(frozen=True)
class _Moments:
    """What a measured fill wrote: where, at which version, and its sums about the law's
    centre (of ``x - centre`` and of its square)."""

    fill: int
    ptr: int
    numel: int
    dtype: torch.dtype
    version: int
    s1: float
    s2: float


class KeyedStream:
    """A RandomSource whose values depend on (key, draw number, tensor size, element index)
    only.

    The key is :func:`~initlab.streams.keys.derive_key` ``(seed, name)``; draw ``d`` is keyed by
    ``draw_key(key, d)``, and element ``i`` of a fill comes from word ``i`` of that draw's
    AES-128-CTR keystream, computed chunk by chunk (the package docstring gives every formula).
    So any window of a tensor can be generated alone and equals that window of the full tensor.
    Design: Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3",
    https://doi.org/10.1145/2063384.2063405

    ``draw`` is the number of the next draw; every fill or randperm call uses one (also on
    meta or empty tensors), so the same calls give the same values; setting ``draw`` replays
    a given call (e.g. one block of a packed parameter, on a shard). With ``measure`` set,
    whole in-place fills also sum what they write, for :meth:`achieved_std`.

    Args:
        seed: an int in [0, 2**64).
        name: the parameter's qualified name (renaming it changes the values).

    Example:
        >>> s = KeyedStream(0, "fc.weight")
        >>> s.uniform_(torch.empty(2, 3), -1.0, 1.0)
        tensor([[ 0.1679, -0.0168, -0.0209],
                [-0.8609, -0.7533,  0.6287]])
        >>> s
        KeyedStream(seed=0, name='fc.weight', draw=1)
        >>> full = KeyedStream(0, "fc.weight").normal_(torch.empty(4, 6), 0.0, 1.0)
        >>> shard = KeyedStream(0, "fc.weight")
        >>> with shard.window((4, 6), (slice(2, 4), slice(1, 3))):
        ...     part = shard.normal_(torch.empty(2, 2), 0.0, 1.0)
        >>> torch.equal(part, full[2:4, 1:3])
        True
    """

    #: any window of a tensor can be generated alone (see RandomSource)
    addressable = True

    def __init__(self, seed: int, name: str) -> None:
        self.key: int = derive_key(seed, name)
        self.seed: int | None = int(seed)
        self.name: str | None = name
        self.draw: int = 0
        self.measure = False
        self._window: Window | None = None
        self._moments: _Moments | None = None

    @classmethod
    def from_key(cls, key: int) -> KeyedStream:
        """A stream from a 128-bit key (seed and name unknown)."""
        key = operator.index(key)
        if not 0 <= key < 2**128:
            raise ValueError(f"key must lie in [0, 2**128), got {key}")
        self = cls.__new__(cls)
        self.key, self.seed, self.name, self.draw, self._window = key, None, None, 0, None
        self.measure, self._moments = False, None
        return self

    def fork(self, label: str) -> KeyedStream:
        """An independent child stream for a sub-step, derived from (key, label) only."""
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        tag = b"initlab-fork-v1\0"
        return KeyedStream.from_key(hash128(tag, self.key.to_bytes(16, "little"), label.encode()))

    @property
    def in_window(self) -> bool:
        """Whether fills currently produce a window of a larger tensor."""
        return self._window is not None

    @contextlib.contextmanager
    def window(self, global_shape: Sequence[int], index: object) -> Iterator[KeyedStream]:
        """Inside, fills write the values of ``full[index]`` for a ``global_shape`` tensor.

        ``index``: a tuple of step-1 slices and ints (an int is a length-1 dimension); the
        filled tensor has the window's shape (ints kept as size 1, or dropped).
        """
        if self._window is not None:
            raise RuntimeError("stream windows do not nest")
        self._window = Window(global_shape, index)
        try:
            yield self
        finally:
            self._window = None

    # -- RandomSource ---------------------------------------------------------------------
    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor:
        """Fill ``t`` with U(low, high) values of the next draw (see the package docstring)."""
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"uniform_: need finite low <= high, got [{low}, {high}]")
        return self._fill(t, lambda f64: Uniform(low, high, f64))

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor:
        """Fill ``t`` with N(mean, std²) values of the next draw (Box–Muller; package docstring)."""
        mean, std = float(mean), float(std)
        if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"normal_: need finite mean and std >= 0, got {mean}, {std}")
        return self._fill(t, lambda f64: Normal(mean, std, f64))

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        """Standard normal conditioned on ``[a, b]`` (bounds in standard deviations)."""
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b) or not a < b:
            raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
        _check_float(t)
        clip = _inward_bounds(a, b, t.dtype)
        return self._fill(t, lambda f64: TruncNormal(a, b, clip, f64))

    def randperm(self, n: int) -> Tensor:
        """A permutation of 0..n-1: stable argsort of the draw's first n 64-bit words (not
        windowed)."""
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"randperm: n must be >= 0, got {n}")
        ks = Keystream(draw_key(self.key, self._next()))
        words = np.empty(n, np.uint64)
        raw = bytearray(min(n, CH) * 8 + 16)
        for a in range(0, n, CH):
            b = min(n, a + CH)
            words[a:b] = read_words(ks, a, raw, b - a, np.dtype(np.uint64))
        return torch.from_numpy(np.argsort(words, kind="stable").astype(np.int64))

    # -- internals ------------------------------------------------------------------------
    def _next(self) -> int:
        self.draw += 1
        return self.draw - 1

    def _fill(self, t: Tensor, make: Callable[[bool], Kernel]) -> Tensor:
        global _last_fill
        _check_float(t)
        win = self._window
        if win is not None and tuple(t.shape) not in (win.shape, win.squeezed_shape):
            raise ValueError(f"tensor shape {tuple(t.shape)} != window shape {win.shape}")
        kern = make(t.dtype == torch.float64)
        dkey = draw_key(self.key, self._next())
        self._moments = None
        if t.is_meta or t.numel() == 0:
            return t
        chunk = chunk_size(t.numel() if win is None else math.prod(win.global_shape))
        start = 0 if win is None else win.contiguous_start
        flat = None if start is not None else win.flat  # type: ignore[union-attr]
        start = start or 0
        fill = _last_fill = next(_fills)
        with torch.no_grad():
            dest = t.detach()
            if not dest.is_contiguous():  # row-major values, then copied into the layout
                out = np.empty(t.numel(), kern.dtype)
                generate(kern, dkey, out, flat, start, chunk)
                dest.copy_(torch.from_numpy(out).view(t.shape))
            elif dest.device.type == "cpu" and dest.dtype == _TORCH_DTYPE[np.dtype(kern.dtype)]:
                sums: Sums | None = None
                if self.measure and win is None:
                    sums = []
                generate(kern, dkey, dest.view(-1).numpy(), flat, start, chunk, sums)
                version = _version(dest)
                if sums is not None and version is not None:
                    s1, s2 = math.fsum(a for a, _ in sums), math.fsum(b for _, b in sums)
                    self._moments = _Moments(fill, dest.data_ptr(), dest.numel(), dest.dtype,
                                             version, s1, s2)  # fmt: skip
            else:  # another dtype or device: in pieces, so no full-size copy is made
                dest = dest.view(-1)
                n = dest.numel()
                buf = np.empty(min(n, PIECE), kern.dtype)
                for a in range(0, n, PIECE):
                    b = min(n, a + PIECE)
                    sub = None if flat is None else flat[a:b]
                    generate(kern, dkey, buf[: b - a], sub, start + a, chunk)
                    dest[a:b].copy_(torch.from_numpy(buf[: b - a]))
        return t

    def achieved_std(self, t: Tensor) -> float | None:
        """The sample std of ``t`` from sums the last fill took while it wrote (kernel call by
        kernel call, in cache), or None unless that fill had ``measure`` set, wrote all of ``t``
        in place, and nothing has written to ``t`` since: ``t``'s version counter has not
        moved (torch in-place ops) and no stream has filled anything after it.

        The sums are about the law's centre (a normal's mean...), in the tensor's precision
        within a kernel call (up to 4 chunks) and in float64 across calls: ~1e-7 (relative)
        from a float64 std of the same values (tested to 1e-6).
        """
        m = self._moments
        version = _version(t)
        if (
            m is None
            or version is None
            or m.fill != _last_fill
            or t.data_ptr() != m.ptr
            or t.numel() != m.numel
            or t.dtype != m.dtype
            or version != m.version
            or m.numel < 2
        ):
            return None
        mean = m.s1 / m.numel
        return math.sqrt(max(0.0, (m.s2 - m.numel * mean * mean) / (m.numel - 1)))

    def __repr__(self) -> str:
        if self.name is not None:
            return f"KeyedStream(seed={self.seed}, name={self.name!r}, draw={self.draw})"
        return f"KeyedStream.from_key(0x{self.key:032x}) (draw={self.draw})"


def _version(t: Tensor) -> int | None:
    """``t``'s version counter (None for an inference tensor, which keeps none)."""
    try:
        return t._version
    except RuntimeError:
        return None


def _check_float(t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"KeyedStream fills floating-point tensors, got dtype {t.dtype}")


def _inward_bounds(a: float, b: float, dtype: torch.dtype) -> tuple[float, float]:
    """[a, b] shrunk to the nearest values of ``dtype`` inside it (so a cast stays inside)."""
    out = [a, b]
    for i, (v, inward) in enumerate(((a, 1.0), (b, -1.0))):
        if dtype != torch.float64 and math.isfinite(v):
            r = torch.tensor(v, dtype=torch.float64).to(dtype)
            if (float(r) - v) * inward < 0:  # rounded outwards: step one value inwards
                r = torch.nextafter(r, torch.tensor(inward * math.inf, dtype=dtype))
            out[i] = float(r)
    return (out[0], out[1]) if out[0] <= out[1] else (a, b)
