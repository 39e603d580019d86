"""Keyed, counter-based random streams: randomness that belongs to each parameter.

A :class:`KeyedStream` is a :class:`~initlab.rng.RandomSource` whose values depend only on
(seed, qualified parameter name, draw number, element index): not on torch's or numpy's global
RNG, initialisation order, thread counts, or which slice is requested. Any window of a tensor
(a shard on another process) can be generated alone and equals that window of the full tensor,
bit for bit. Design (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"):

* Keys. ``derive_key(seed, name)``: blake2b-128 of a versioned, unambiguous encoding. Every
  ``uniform_``/``normal_``/``trunc_normal_``/``randperm`` call consumes one draw ``d``, whose
  Philox key is blake2b-128 of (stream key, d); ``fork(label)`` hashes (key, label) under
  another domain tag, so a child does not depend on when it was forked.
* Raw bits. uint64 word ``w`` of a draw is word ``w % 4`` of the Philox4x64-10 block with
  counter ``w // 4 + 1`` (numpy increments the counter before producing a block); ``_raw``
  sets the counter, so any word is reachable in O(1).
* Chunks. Elements (flat, row-major) are processed in globally aligned chunks: chunk ``c`` is
  ``[c*CH, (c+1)*CH)``, always computed whole by the same numpy ops on same-length arrays, then
  cut or gathered, so no value depends on the slice, chunk boundaries, SIMD tails or threads.
* Distributions (``k``: bits read as an integer; float16/bfloat16 get float32 values rounded):

  - uniform: element ``i`` takes uint32 ``i`` (word ``i // 2``, low half first), ``u =
    (k >> 8)·2⁻²⁴``, value ``low + span·u`` in float32 (span = float32(high − low), 2⁻²⁴ folded
    in exactly); float64 targets: word ``i``, ``u = (k >> 11)·2⁻⁵³``, float64. May round to high.
  - normal: Box–Muller using both outputs. In chunk ``c`` (h = CH/2), pair ``j`` takes the
    chunk's uint32 ``j`` and ``j + h`` (64-bit words for float64 targets):
    ``u1 = ((k_j >> 8) + 1)·2⁻²⁴`` in (0, 1], ``θ = (k_{j+h} >> 8)·2π·2⁻²⁴``,
    ``r = std·sqrt(−2 ln u1)``; element ``c*CH + j`` = mean + r cos θ and ``c*CH + h + j`` =
    mean + r sin θ (contiguous halves keep every numpy pass unit-stride). The multiply by
    std = 1 and the add of mean = 0 are skipped. Tail limit: |z| <= sqrt(48 ln 2) = 5.77 in
    float32 (P = 7.9e-9 beyond), 8.57 for float64 (53-bit u1).
  - trunc_normal(a, b), bounds in std: exact inversion in float64 for every dtype. Word
    ``i``, ``v = ((k >> 12) + 0.5)·2⁻⁵²`` in (0, 1), ``x = ndtri(Φ(lo) + (Φ(hi) − Φ(lo))·v)``
    with [lo, hi] = [a, b], or [−b, −a] and x negated when a + b > 0, so the far tail is the
    lower one where small probabilities keep relative precision ([3, 4], [5, 5.0001] are as
    exact as [−2, 2]). Clipping to [a, b] (inward-rounded to the dtype) only guards rounding.
    An open side reaches |x| ~ 8.2; intervals beyond 37 std (Φ underflows) raise ValueError.
  - randperm(n): stable argsort of the draw's first n words (deterministic, computed whole).
* Windows: inside ``with stream.window(global_shape, index):`` fills produce ``full[index]``.
* Threads: chunks write disjoint ranges of a preallocated output, so a module-level pool
  (``set_num_threads``) splits them freely (numpy ufuncs and ``random_raw`` release the GIL);
  torch's ndtri runs on 16384-element blocks, below torch's parallel grain size.

Limitations: the integer bits are identical everywhere; log, sin, cos (numpy) and ndtri (torch)
use SIMD kernels chosen per CPU, so bitwise equality across CPUs (e.g. AVX2 vs AVX-512) is not
promised, only on one machine and software stack. The domain tags and ``CH`` version the
stream. One stream object should not be drawn from by several threads at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import operator
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

__all__ = ["CH", "KeyedStream", "derive_key", "get_num_threads", "set_num_threads"]

CH = 1 << 16  #: elements per chunk (a multiple of 64); part of the stream's definition
_H = CH // 2
_NDTRI_BLOCK = 1 << 14  # below torch's parallel grain size (32768): ndtri runs inline
_INLINE_CHUNKS = 2  # requests of at most this many chunks run in the calling thread
_TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
_TAIL_LIMIT = 37.0  # Φ(-37) ~ 6e-300: beyond this the float64 inversion underflows

_lock = threading.Lock()
_num_threads = max(1, min(os.cpu_count() or 1, 8))
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int) -> None:
    """Threads used by stream fills (values never depend on it)."""
    global _num_threads, _pool
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    with _lock:
        if n != _num_threads:
            _num_threads, _pool = n, None  # the old pool's idle workers exit when it is freed


def get_num_threads() -> int:
    """Threads used by stream fills (default: os.cpu_count() capped at 8)."""
    return _num_threads


def _get_pool() -> tuple[ThreadPoolExecutor, int]:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_num_threads, thread_name_prefix="initlab-stream")
        return _pool, _num_threads


# -- keys ---------------------------------------------------------------------------------
def _hash128(*parts: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(b"".join(parts), digest_size=16).digest(), "little")


def derive_key(seed: int, name: str) -> int:
    """128-bit key: blake2b-128 of ``b"initlab-stream-v1\\0" + decimal(seed) + b"\\0" +
    utf8(name)``, read little-endian; unambiguous (no NUL in the seed, the name comes last)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    return _hash128(b"initlab-stream-v1\0", str(seed).encode(), b"\0", name.encode("utf-8"))


def _draw_key(key: int, draw: int) -> int:
    return _hash128(b"initlab-draw-v1\0", key.to_bytes(16, "little"), draw.to_bytes(8, "little"))


def _raw(draw_key: int, start_word: int, n_words: int, cursor: list | None = None) -> np.ndarray:
    """uint64 words ``[start_word, start_word + n_words)`` of a draw (Philox4x64-10): word w is
    word ``w % 4`` of the block with counter ``w // 4 + 1``. ``cursor`` ([bit_generator, next
    word], one thread's) lets consecutive reads go on without re-keying: same words either way.
    """
    if cursor is not None and cursor[0] is not None and cursor[1] == start_word:
        bg = cursor[0]
    else:
        bg = np.random.Philox(key=draw_key)
        state = bg.state  # counter = the block before the first one we want (< 2**62)
        state["state"]["counter"] = np.array([start_word // 4, 0, 0, 0], dtype=np.uint64)
        state.update(buffer_pos=4, has_uint32=0)  # empty buffer: counter is incremented first
        bg.state = state
        if start_word % 4:
            bg.random_raw(start_word % 4)
    words = bg.random_raw(n_words)
    if cursor is not None:
        cursor[0], cursor[1] = bg, start_word + n_words
    return words


def _halves(words: np.ndarray) -> np.ndarray:
    """The words as uint32, low half of each word first (in place on little-endian hosts)."""
    if sys.byteorder == "little":
        return words.view(np.uint32)
    return np.ascontiguousarray(words.view(np.uint32).reshape(-1, 2)[:, ::-1]).reshape(-1)


# -- chunk kernels: fill dst (the CH values of one chunk) from the chunk's words -------------
class _Kernel:
    def __init__(self, f64: bool) -> None:
        self.f64 = f64
        self.dtype: type = np.float64 if f64 else np.float32
        self.words_per_chunk = CH if f64 else _H

    def ints(self, words: np.ndarray, dst: np.ndarray) -> None:
        """dst <- k as floats: 53 bits of each word (float64) or 24 of each uint32 (float32)."""
        if self.f64:
            np.right_shift(words, 11, out=words)
            np.copyto(dst, words.view(np.int64), casting="unsafe")  # exact: < 2**53
        else:
            bits = _halves(words)
            np.right_shift(bits, 8, out=bits)
            np.copyto(dst, bits, casting="unsafe")  # exact: < 2**24

    @staticmethod
    def temp(tmp: dict, name: str, n: int, dtype: type) -> np.ndarray:
        return tmp[name] if name in tmp else tmp.setdefault(name, np.empty(n, dtype))


class _Uniform(_Kernel):
    def __init__(self, low: float, high: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.low, self.scale = ft(low), ft(high - low) * ft(2.0 ** (-53 if f64 else -24))

    def __call__(self, words: np.ndarray, dst: np.ndarray, tmp: dict) -> None:
        self.ints(words, dst)
        np.multiply(dst, self.scale, out=dst)
        if self.low != 0:  # adding +0.0 would change nothing (span * u is never -0.0)
            np.add(dst, self.low, out=dst)


class _Normal(_Kernel):
    def __init__(self, mean: float, std: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.mean, self.std = ft(mean), ft(std)
        unit = 2.0 ** (-53 if f64 else -24)
        self.unit, self.ang = ft(unit), ft(2.0 * math.pi * unit)

    def __call__(self, words: np.ndarray, dst: np.ndarray, tmp: dict) -> None:
        ft = self.dtype
        self.ints(words, dst)
        r, th, cs = (self.temp(tmp, f"n{i}", _H, ft) for i in range(3))
        np.add(dst[:_H], ft(1.0), out=r)
        np.multiply(r, self.unit, out=r)  # u1 in (0, 1]
        np.log(r, out=r)
        np.multiply(r, ft(-2.0), out=r)
        np.sqrt(r, out=r)
        if self.std != 1:
            np.multiply(r, self.std, out=r)
        np.multiply(dst[_H:], self.ang, out=th)
        np.cos(th, out=cs)  # transcendentals always run on the kernel's own buffers
        np.multiply(cs, r, out=dst[:_H])
        np.sin(th, out=cs)
        np.multiply(cs, r, out=dst[_H:])
        if self.mean != 0:
            np.add(dst, self.mean, out=dst)


class _TruncNormal(_Kernel):
    def __init__(self, a: float, b: float, clip: tuple[float, float]) -> None:
        super().__init__(True)
        self.sign = -1.0 if a + b > 0 else 1.0
        lo, hi = (-b, -a) if self.sign < 0 else (a, b)
        if hi < -_TAIL_LIMIT:
            msg = f"[{a}, {b}] lies beyond {_TAIL_LIMIT:g} std, where float64 Φ underflows"
            raise ValueError(f"trunc_normal_: {msg}")
        p_lo, p_hi = (0.5 * math.erfc(-v / math.sqrt(2.0)) for v in (lo, hi))
        self.p_lo, self.scale = p_lo, (p_hi - p_lo) * 2.0**-52
        self.clip = clip

    def __call__(self, words: np.ndarray, dst: np.ndarray, tmp: dict) -> None:
        x = self.temp(tmp, "t", CH, np.float64)
        np.right_shift(words, 12, out=words)
        np.copyto(x, words.view(np.int64), casting="unsafe")
        np.add(x, 0.5, out=x)  # exact: < 2**53
        np.multiply(x, self.scale, out=x)
        np.add(x, self.p_lo, out=x)
        xt = torch.from_numpy(x)
        for s in range(0, CH, _NDTRI_BLOCK):
            blk = xt[s : s + _NDTRI_BLOCK]
            torch.special.ndtri(blk, out=blk)
        if self.sign < 0:
            np.negative(x, out=x)
        np.clip(x, self.clip[0], self.clip[1], out=dst)


# -- the chunk engine -----------------------------------------------------------------------
def _generate(
    kern: _Kernel, draw_key: int, out: np.ndarray, flat: np.ndarray | None, start: int = 0
) -> None:
    """Write into ``out`` the values at flat indices ``flat`` (None: the contiguous range
    ``start .. start + out.size - 1``, as cheap per element as a whole fill)."""
    n = out.size
    if flat is None:
        chunks = np.arange(start // CH, (start + n - 1) // CH + 1, dtype=np.int64)
        pos = np.clip(np.append(chunks * CH, (chunks[-1] + 1) * CH) - start, 0, n)
    else:
        cid = flat // CH
        first = np.ones(n, dtype=bool)
        first[1:] = cid[1:] != cid[:-1]  # flat is increasing: the chunks come in order
        chunks = cid[first]
        pos = np.append(np.flatnonzero(first), n)
    wpc = kern.words_per_chunk

    def work(i0: int, i1: int) -> None:
        cursor: list = [None, -1]
        tmp: dict = {}
        for i in range(i0, i1):
            c, p0, p1 = int(chunks[i]), int(pos[i]), int(pos[i + 1])
            words = _raw(draw_key, c * wpc, wpc, cursor)
            if p1 - p0 == CH:  # the whole chunk is wanted: compute it in place
                kern(words, out[p0:p1], tmp)
                continue
            buf = kern.temp(tmp, "chunk", CH, kern.dtype)
            kern(words, buf, tmp)
            if flat is None:
                off = start - c * CH
                out[p0:p1] = buf[p0 + off : p1 + off]
            else:
                np.take(buf, flat[p0:p1] - c * CH, out=out[p0:p1])

    m = chunks.size
    pool, threads = _get_pool()
    if threads == 1 or m <= _INLINE_CHUNKS:
        work(0, m)
        return
    groups = min(m, 4 * threads)  # a few groups per thread balance uneven cores
    bounds = [m * g // groups for g in range(groups + 1)]
    for f in [pool.submit(work, bounds[g], bounds[g + 1]) for g in range(groups)]:
        f.result()


# -- windows ------------------------------------------------------------------------------
class _Window:
    def __init__(self, global_shape: Sequence[int], index: object) -> None:
        gshape = tuple(operator.index(s) for s in global_shape)
        if any(s < 0 for s in gshape):
            raise ValueError(f"global_shape must hold sizes >= 0, got {gshape}")
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) > len(gshape):
            raise IndexError(f"window index {index!r} has more entries than {gshape}")
        idx = idx + (slice(None),) * (len(gshape) - len(idx))
        self.ranges: list[range] = []
        squeezed = []
        for d, (ix, size) in enumerate(zip(idx, gshape, strict=True)):
            if isinstance(ix, slice):
                start, stop, step = ix.indices(size)
                if step != 1:
                    raise ValueError(f"window slices must have step 1, got {ix} in dim {d}")
                self.ranges.append(range(start, max(start, stop)))
                squeezed.append(len(self.ranges[-1]))
                continue
            i = operator.index(ix)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of range for dim {d} of size {size}")
            self.ranges.append(range(i % size, i % size + 1))
        self.global_shape, self.squeezed_shape = gshape, tuple(squeezed)
        self.shape = tuple(len(r) for r in self.ranges)
        self._flat: np.ndarray | None = None

    @property
    def contiguous_start(self) -> int | None:
        """The first flat index when the window is one contiguous row-major range, else None.

        That is the case when every dimension after the first partial one is whole, e.g. a
        ``Shard(0)`` slab of rows: such windows are generated as a plain range, with no index
        arrays.
        """
        partial = [
            d
            for d, (r, s) in enumerate(zip(self.ranges, self.global_shape, strict=True))
            if len(r) != s
        ]
        if partial and any(len(r) != 1 for r in self.ranges[: partial[-1]]):
            return None
        first = tuple(r.start for r in self.ranges)
        if not first or any(len(r) == 0 for r in self.ranges):
            return 0 if not first else None
        return int(np.ravel_multi_index(first, self.global_shape))

    @property
    def flat(self) -> np.ndarray:
        """The window's global flat indices, row-major (hence increasing)."""
        if self._flat is None:
            grid = np.ix_(*[np.arange(r.start, r.stop, dtype=np.int64) for r in self.ranges])
            dims = self.global_shape if self.global_shape else (1,)
            grid = grid if grid else (np.zeros(1, dtype=np.int64),)
            self._flat = np.ravel_multi_index(grid, dims).reshape(-1)
        return self._flat


# -- the stream ---------------------------------------------------------------------------
class KeyedStream:
    """A RandomSource whose values depend on (key, draw number, element index) only.

    ``draw`` is the number of the next draw; every fill or randperm call uses one (also on
    meta or empty tensors), so the same calls give the same values; setting ``draw`` replays
    a given call (e.g. one block of a packed parameter, on a shard).
    """

    def __init__(self, seed: int, name: str) -> None:
        self.key: int = derive_key(seed, name)
        self.seed: int | None = int(seed)
        self.name: str | None = name
        self.draw: int = 0
        self._window: _Window | None = None

    @classmethod
    def from_key(cls, key: int) -> KeyedStream:
        """A stream from a 128-bit key (seed and name unknown)."""
        key = operator.index(key)
        if not 0 <= key < 2**128:
            raise ValueError(f"key must lie in [0, 2**128), got {key}")
        self = cls.__new__(cls)
        self.key, self.seed, self.name, self.draw, self._window = key, None, None, 0, None
        return self

    def fork(self, label: str) -> KeyedStream:
        """An independent child stream for a sub-step, derived from (key, label) only."""
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        tag = b"initlab-fork-v1\0"
        return KeyedStream.from_key(_hash128(tag, self.key.to_bytes(16, "little"), label.encode()))

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
        self._window = _Window(global_shape, index)
        try:
            yield self
        finally:
            self._window = None

    # -- RandomSource ---------------------------------------------------------------------
    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor:
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"uniform_: need finite low <= high, got [{low}, {high}]")
        return self._fill(t, lambda f64: _Uniform(low, high, f64))

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor:
        mean, std = float(mean), float(std)
        if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"normal_: need finite mean and std >= 0, got {mean}, {std}")
        return self._fill(t, lambda f64: _Normal(mean, std, f64))

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        """Standard normal conditioned on ``[a, b]`` (bounds in standard deviations)."""
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b) or not a < b:
            raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
        _check_float(t)
        kern = _TruncNormal(a, b, _inward_bounds(a, b, t.dtype))
        return self._fill(t, lambda f64: kern)

    def randperm(self, n: int) -> Tensor:
        """A permutation of 0..n-1: stable argsort of the draw's first n words (not windowed)."""
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"randperm: n must be >= 0, got {n}")
        words = _raw(_draw_key(self.key, self._next()), 0, n)
        return torch.from_numpy(np.argsort(words, kind="stable").astype(np.int64))

    # -- internals ------------------------------------------------------------------------
    def _next(self) -> int:
        self.draw += 1
        return self.draw - 1

    def _fill(self, t: Tensor, make: Callable[[bool], _Kernel]) -> Tensor:
        _check_float(t)
        win = self._window
        if win is not None and tuple(t.shape) not in (win.shape, win.squeezed_shape):
            raise ValueError(f"tensor shape {tuple(t.shape)} != window shape {win.shape}")
        kern = make(t.dtype == torch.float64)
        draw_key = _draw_key(self.key, self._next())
        if t.is_meta or t.numel() == 0:
            return t
        with torch.no_grad():
            direct = (
                t.device.type == "cpu" and t.is_contiguous() and t.dtype == _TORCH_DTYPE[kern.dtype]
            )
            out = t.detach().view(-1).numpy() if direct else np.empty(t.numel(), kern.dtype)
            start = 0 if win is None else win.contiguous_start
            _generate(kern, draw_key, out, win.flat if start is None else None, start or 0)
            if not direct:
                t.copy_(torch.from_numpy(out).view(t.shape))
        return t

    def __repr__(self) -> str:
        if self.name is not None:
            return f"KeyedStream(seed={self.seed}, name={self.name!r}, draw={self.draw})"
        return f"KeyedStream.from_key(0x{self.key:032x}) (draw={self.draw})"


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
