"""Keyed, counter-based random streams: randomness that belongs to each parameter.

A :class:`KeyedStream` is a :class:`~initlab.rng.RandomSource` whose values depend only on
(seed, qualified parameter name, draw number, the tensor's size, element index): not on torch's
or numpy's global RNG, initialisation order, thread counts, or which slice is requested. Any
window of a tensor (a shard on another process) can be generated alone and equals that window
of the full tensor, bit for bit. Design (Salmon et al. 2011, "Parallel random numbers: as easy
as 1, 2, 3", whose AES generator this is):

* Keys. ``derive_key(seed, name)``: blake2b-128 of a versioned, unambiguous encoding. Every
  ``uniform_``/``normal_``/``trunc_normal_``/``randperm`` call consumes one draw ``d``, whose
  128-bit key is blake2b-128 of (stream key, d); ``fork(label)`` hashes (key, label) under
  another domain tag, so a child does not depend on when it was forked.
* Raw bits: AES-128 in counter mode. Byte ``o`` of a draw is byte ``o % 16`` of
  AES-128(draw key, the 128-bit big-endian integer ``o // 16``); 32- and 64-bit words are read
  little-endian (word ``w`` = bytes ``[w·s, (w+1)·s)``). Any word is reachable in O(1), and
  the bits are the same on every machine. AES runs in hardware (AES-NI, ARMv8 crypto) through
  OpenSSL (the ``cryptography`` package), ~4x faster than numpy's Philox, with the GIL released.
* Chunks. A tensor of N elements (flat, row-major) is processed in chunks of
  ``C = chunk_size(N)`` elements (the power of two >= N, clamped to [64, CH]): chunk ``c`` is
  ``[c·C, (c+1)·C)`` and reads words ``[c·C, (c+1)·C)``, one word per element. A chunk is
  always computed whole by the same ops on same-length arrays, then cut or gathered, so no
  value depends on the slice, on chunk boundaries, SIMD tails or threads; small tensors cost
  small chunks.
* Distributions (``k``: a word's bits read as an integer; float16/bfloat16 get float32 values
  rounded; float32 targets read 32-bit words, float64 targets 64-bit words):

  - uniform: ``u = (k >> 8)·2⁻²⁴`` (float64: ``(k >> 11)·2⁻⁵³``) and the value
    ``low + span·u`` in the target's precision (span = high − low rounded, 2⁻ᵇ folded in
    exactly). May round to high.
  - normal: Box–Muller using both outputs. In a chunk of C elements (h = C/2), pair ``j``
    takes the chunk's words ``j`` and ``j + h``: ``u1 = ((k_j >> 8) + 1)·2⁻²⁴`` in (0, 1],
    ``θ = (k_{j+h} >> 8)·fl(2π·2⁻²⁴)`` (float64: 53 bits), ``r = sqrt(−2·std²·ln u1)``
    (``std·sqrt(−2 ln u1)`` where std² is not a normal number of the dtype); element
    ``c·C + j`` = mean + r cos θ and ``c·C + h + j`` = mean + r sin θ (contiguous halves keep
    every pass unit-stride). The add of mean = 0 is skipped.
    Tail limit: |z| <= sqrt(48 ln 2) = 5.77 in float32 (P = 7.9e-9 beyond), 8.57 in float64.
  - trunc_normal(a, b), bounds in std: exact inversion in float64 for every dtype, 64-bit
    words. ``v = ((k >> 12) + 0.5)·2⁻⁵²`` in (0, 1), ``x = ndtri(Φ(lo) + (Φ(hi) − Φ(lo))·v)``
    with [lo, hi] = [a, b], or [−b, −a] and x negated when a + b > 0, so the far tail is the
    lower one where small probabilities keep relative precision ([3, 4], [5, 5.0001] are as
    exact as [−2, 2]). Clipping to [a, b] (inward-rounded to the dtype) only guards rounding.
    An open side reaches |x| ~ 8.2; intervals beyond 37 std (Φ underflows) raise ValueError.
  - randperm(n): stable argsort of the draw's first n 64-bit words (computed whole).
* Windows: inside ``with stream.window(global_shape, index):`` fills produce ``full[index]``.
* Threads: chunks write disjoint ranges of a preallocated output, so a module-level pool
  (``set_num_threads``) splits them freely: AES, numpy ufuncs and torch kernels release the
  GIL. Each pool thread runs torch ops single-threaded (OpenMP builds), so torch's own
  threads never nest inside the pool; values do not depend on any of this.

Limitations: the integer bits are identical everywhere; log, sin, cos and ndtri (torch's CPU
kernels, MKL or SLEEF) are chosen per CPU, so bitwise equality of normal values across CPU
families (e.g. AVX2 vs AVX-512) is not promised, only on one machine and software stack. The
domain tags, ``CH`` and the chunk rule version the stream. One stream object should not be
drawn from by several threads at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import math
import operator
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CH",
    "KeyedStream",
    "chunk_size",
    "derive_key",
    "get_num_threads",
    "set_num_threads",
]

CH = 1 << 17  #: the largest chunk (elements); part of the stream's definition with chunk_size
_MIN_CH = 64  #: the smallest chunk
_NDTRI_BLOCK = 1 << 14  # below torch's parallel grain size (32768): ndtri runs inline
_INLINE_ELEMS = 1 << 11  # fills of at most this many chunk elements run in the calling thread
_PIECE = 1 << 22  # elements per piece when the target is not written in place (bf16, CUDA)
_TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
_TAIL_LIMIT = 37.0  # Φ(-37) ~ 6e-300: beyond this the float64 inversion underflows
_BIG_ENDIAN = sys.byteorder == "big"
_Sums = list[tuple[float, float]]  # per chunk: sum of x - center, sum of its square

_fills = itertools.count(1)  # numbers every fill that writes, in any stream and thread
_last_fill = 0  # the number of the latest such fill
_lock = threading.Lock()
_num_threads = max(1, min(os.cpu_count() or 1, 8))
_pool: ThreadPoolExecutor | None = None


def chunk_size(numel: int) -> int:
    """Elements per chunk for a tensor of ``numel`` elements: the power of two >= numel,
    clamped to [64, CH] (so a bias costs a small chunk, a large matrix many CH chunks)."""
    return min(CH, max(_MIN_CH, 1 << max(0, numel - 1).bit_length()))


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


def _openmp() -> bool:
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _worker_init(barrier: threading.Barrier, single: bool) -> None:
    if single:
        # OpenMP's team size is per thread: one here keeps torch ops inside this worker
        # single-threaded (no nested teams); the pool's creator restores torch's default.
        # get_num_threads first: torch's lazy per-thread init would later reset it.
        torch.get_num_threads()
        torch.set_num_threads(1)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=60)


def _get_pool() -> tuple[ThreadPoolExecutor, int]:
    global _pool
    with _lock:
        if _pool is None:
            n, single = _num_threads, _openmp()
            keep = torch.get_num_threads()
            barrier = threading.Barrier(n + 1)
            pool = ThreadPoolExecutor(n, "initlab-stream", _worker_init, (barrier, single))
            for _ in range(n):  # every submit starts a thread: none is idle before the barrier
                pool.submit(int)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            if single:
                torch.set_num_threads(keep)  # the default for threads torch has not yet seen
            _pool = pool
        return _pool, _num_threads


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _lock, _pool
    _lock, _pool = threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


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
    return _hash128(b"initlab-draw-v2\0", key.to_bytes(16, "little"), draw.to_bytes(8, "little"))


# -- raw bits: AES-128-CTR ----------------------------------------------------------------
_zero_bytes = bytes(CH * 8)


def _zeros(n: int) -> memoryview:
    global _zero_bytes
    if n > len(_zero_bytes):
        _zero_bytes = bytes(n)
    return memoryview(_zero_bytes)[:n]


def _cipher(key: bytes, block: int) -> Any:
    """An AES-128-CTR encryptor whose first keystream block is AES(key, block)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()


class _Keystream:
    """One draw's keystream, read from any byte offset; consecutive reads go on without
    re-keying (same bytes either way). One thread's."""

    __slots__ = ("_enc", "_key", "_pos")

    def __init__(self, draw_key: int) -> None:
        self._key = draw_key.to_bytes(16, "little")
        self._enc: Any = None
        self._pos = -1

    def read(self, start: int, buf: bytearray, nbytes: int) -> None:
        """``buf[:nbytes]`` <- keystream bytes ``[start, start + nbytes)``; ``buf`` has 16
        bytes to spare (OpenSSL's rule for update_into)."""
        if self._enc is None or start != self._pos:
            block, skip = divmod(start, 16)
            self._enc = _cipher(self._key, block)
            if skip:
                self._enc.update(bytes(skip))
        self._enc.update_into(_zeros(nbytes), buf)
        self._pos = start + nbytes


def _read_words(ks: _Keystream, first: int, buf: bytearray, n: int, word: np.dtype) -> np.ndarray:
    """Words ``[first, first + n)`` of a draw as a native-endian view of ``buf``."""
    ks.read(first * word.itemsize, buf, n * word.itemsize)
    words = np.frombuffer(buf, dtype=word, count=n)
    if _BIG_ENDIAN:
        words.byteswap(inplace=True)
    return words


class _Scratch(dict):
    """One thread's work buffers, by name (numpy arrays, and torch views of them)."""

    def get_array(self, name: str, n: int, dtype: type) -> np.ndarray:
        """The first ``n`` elements of buffer ``name`` (made, or grown, on demand)."""
        a = self.get(name)
        if a is None or a.size < n or a.dtype != dtype:
            a = self[name] = np.empty(n, dtype)
        return a[:n]


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(a)


# -- chunk kernels: fill dst (the C values of one chunk) from the chunk's C words ------------
class _Kernel:
    """``dtype``: what the kernel writes (float32 or float64); ``word``: the words it reads;
    ``center``: a value near the law's mean, about which moments are summed."""

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
        self, words: np.ndarray, dst: np.ndarray, tmp: _Scratch, sums: _Sums | None = None
    ) -> None:
        """Fill ``dst`` from ``words``; with ``sums``, append the sums of ``dst - center``
        and of its square (see :func:`_sums`)."""
        raise NotImplementedError


class _Uniform(_Kernel):
    def __init__(self, low: float, high: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.low, self.scale = ft(low), ft(high - low) * ft(2.0 ** (-53 if f64 else -24))
        self.center = 0.5 * (low + high)

    def __call__(
        self, words: np.ndarray, dst: np.ndarray, tmp: _Scratch, sums: _Sums | None = None
    ) -> None:
        self.ints(words, dst)
        np.multiply(dst, self.scale, out=dst)
        if self.low != 0:  # adding +0.0 would change nothing (span * u is never -0.0)
            np.add(dst, self.low, out=dst)
        if sums is not None:
            sums.append(_sums(dst, self.center, tmp))


class _Normal(_Kernel):
    def __init__(self, mean: float, std: float, f64: bool) -> None:
        super().__init__(f64)
        ft = self.dtype
        self.mean, self.std = ft(mean), ft(std)
        self.center = float(mean)
        self.unit = ft(2.0 ** (-53 if f64 else -24))
        self.angle = ft(2.0 * math.pi * float(self.unit))
        # r = sqrt(-2·std²·ln u1) in one multiply when std² is a normal number of the dtype
        var = float(self.std) ** 2
        self.fold = 0 < var < np.finfo(ft).max and var >= np.finfo(ft).tiny
        self.r_scale = ft(-2.0 * var) if self.fold else ft(-2.0)

    def __call__(
        self, words: np.ndarray, dst: np.ndarray, tmp: _Scratch, sums: _Sums | None = None
    ) -> None:
        ft, n = self.dtype, dst.size
        h = n // 2
        u = tmp.get_array("work", n, ft)
        w = tmp.get(("normal", n))
        if w is None or w[0] is not tmp["work"]:  # torch views, once per buffer and size
            w = tmp[("normal", n)] = (tmp["work"], _t(u[:h]), _t(u[h:]))
        _, tr, tth = w
        r, th = u[:h], u[h:]
        self.ints(words, u)
        np.multiply(r, self.unit, out=r)
        np.add(r, self.unit, out=r)  # u1 = (k + 1)·2⁻ᵇ in (0, 1], exact
        torch.log(tr, out=tr)
        np.multiply(r, self.r_scale, out=r)
        if sums is not None:  # x - mean = r cos θ, r sin θ: the squares of a pair sum to r²
            sq = float(tr.sum()) * (1.0 if self.fold else float(self.std) ** 2)
        np.sqrt(r, out=r)
        if not self.fold and self.std != 1:
            np.multiply(r, self.std, out=r)
        np.multiply(th, self.angle, out=th)  # θ = k·(2π·2⁻ᵇ), rounded once
        torch.cos(tth, out=_t(dst[:h]))
        torch.sin(tth, out=_t(dst[h:]))
        np.multiply(dst.reshape(2, h), r, out=dst.reshape(2, h))  # r cos θ | r sin θ
        if sums is not None:
            sums.append((float(_t(dst).sum()), sq))
        if self.mean != 0:
            np.add(dst, self.mean, out=dst)


class _TruncNormal(_Kernel):
    def __init__(self, a: float, b: float, clip: tuple[float, float], f64: bool) -> None:
        super().__init__(f64)
        self.word = np.dtype(np.uint64)  # float64 inversion on 52-bit uniforms for every dtype
        self.sign = -1.0 if a + b > 0 else 1.0
        lo, hi = (-b, -a) if self.sign < 0 else (a, b)
        if hi < -_TAIL_LIMIT:
            msg = f"[{a}, {b}] lies beyond {_TAIL_LIMIT:g} std, where float64 Φ underflows"
            raise ValueError(f"trunc_normal_: {msg}")
        p_lo, p_hi = (0.5 * math.erfc(-v / math.sqrt(2.0)) for v in (lo, hi))
        self.p_lo, self.scale = p_lo, (p_hi - p_lo) * 2.0**-52
        self.clip = clip
        self.center = min(max(0.0, a), b)  # a point of [a, b]: the sums are taken about it

    def __call__(
        self, words: np.ndarray, dst: np.ndarray, tmp: _Scratch, sums: _Sums | None = None
    ) -> None:
        n = dst.size
        x = tmp.get_array("t", n, np.float64)
        np.right_shift(words, 12, out=words)
        np.copyto(x, words.view(np.int64), casting="unsafe")
        np.add(x, 0.5, out=x)  # exact: < 2**53
        np.multiply(x, self.scale, out=x)
        np.add(x, self.p_lo, out=x)
        xt = _t(x)
        for s in range(0, n, _NDTRI_BLOCK):
            blk = xt[s : s + _NDTRI_BLOCK]
            torch.special.ndtri(blk, out=blk)
        if self.sign < 0:
            np.negative(x, out=x)
        np.clip(x, self.clip[0], self.clip[1], out=dst)  # clip bounds are dst's values
        if sums is not None:
            sums.append(_sums(dst, self.center, tmp))


# -- the chunk engine -----------------------------------------------------------------------
def _sums(x: np.ndarray, center: float, tmp: _Scratch) -> tuple[float, float]:
    """(sum of x - center, sum of its square), by torch's cascade sums in x's precision
    (MKL's dot loses up to ~1e-6 here), to be added up in float64 across chunks."""
    d, buf = _t(x), _t(tmp.get_array("work", x.size, x.dtype.type))
    if center != 0:
        d = torch.sub(d, center, out=buf)
    s1 = float(d.sum())
    return s1, float(torch.mul(d, d, out=buf).sum())


def _generate(
    kern: _Kernel,
    draw_key: int,
    out: np.ndarray,
    flat: np.ndarray | None,
    start: int,
    chunk: int,
    moments: _Sums | None = None,
) -> None:
    """Write into ``out`` the values at flat indices ``flat`` (None: the contiguous range
    ``start .. start + out.size - 1``, as cheap per element as a whole fill) of a tensor
    whose chunks have ``chunk`` elements. ``moments``: gets, per chunk, the sums of
    ``x - kern.center`` and of its square over the values written (while they are in
    cache)."""
    n = out.size
    if flat is None:
        chunks = np.arange(start // chunk, (start + n - 1) // chunk + 1, dtype=np.int64)
        pos = np.clip(np.append(chunks * chunk, (chunks[-1] + 1) * chunk) - start, 0, n)
    else:
        cid = flat // chunk
        first = np.ones(n, dtype=bool)
        first[1:] = cid[1:] != cid[:-1]  # flat is increasing: the chunks come in order
        chunks = cid[first]
        pos = np.append(np.flatnonzero(first), n)
    word = kern.word

    def work(i0: int, i1: int) -> None:
        ks = _Keystream(draw_key)
        raw = bytearray(chunk * word.itemsize + 16)
        tmp = _Scratch()
        for i in range(i0, i1):
            c, p0, p1 = int(chunks[i]), int(pos[i]), int(pos[i + 1])
            words = _read_words(ks, c * chunk, raw, chunk, word)
            if p1 - p0 == chunk:  # the whole chunk is wanted: compute it in place
                kern(words, out[p0:p1], tmp, moments)
                continue
            buf = tmp.get_array("chunk", chunk, kern.dtype)
            kern(words, buf, tmp)
            if flat is None:
                off = start - c * chunk
                out[p0:p1] = buf[p0 + off : p1 + off]
            else:
                np.take(buf, flat[p0:p1] - c * chunk, out=out[p0:p1])
            if moments is not None:
                moments.append(_sums(out[p0:p1], kern.center, tmp))

    m = chunks.size
    if m * chunk <= _INLINE_ELEMS:  # tiny: not worth a thread hop
        work(0, m)
        return
    pool, threads = _get_pool()
    groups = min(m, 2 * threads)  # contiguous runs (one key schedule each), some balance
    bounds = [m * g // groups for g in range(groups + 1)]
    for f in [pool.submit(work, bounds[g], bounds[g + 1]) for g in range(groups)]:
        f.result()


@dataclasses.dataclass(frozen=True)
class _Moments:
    """What a measured fill wrote: where, at which version, and its sums about ``center``."""

    fill: int
    ptr: int
    numel: int
    dtype: torch.dtype
    version: int
    center: float
    s1: float
    s2: float


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
    """A RandomSource whose values depend on (key, draw number, tensor size, element index)
    only.

    ``draw`` is the number of the next draw; every fill or randperm call uses one (also on
    meta or empty tensors), so the same calls give the same values; setting ``draw`` replays
    a given call (e.g. one block of a packed parameter, on a shard). With ``measure`` set,
    whole in-place fills also sum what they write, for :meth:`achieved_std`.
    """

    def __init__(self, seed: int, name: str) -> None:
        self.key: int = derive_key(seed, name)
        self.seed: int | None = int(seed)
        self.name: str | None = name
        self.draw: int = 0
        self.measure = False
        self._window: _Window | None = None
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
        clip = _inward_bounds(a, b, t.dtype)
        return self._fill(t, lambda f64: _TruncNormal(a, b, clip, f64))

    def randperm(self, n: int) -> Tensor:
        """A permutation of 0..n-1: stable argsort of the draw's first n 64-bit words (not
        windowed)."""
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"randperm: n must be >= 0, got {n}")
        ks = _Keystream(_draw_key(self.key, self._next()))
        words = np.empty(n, np.uint64)
        raw = bytearray(min(n, CH) * 8 + 16)
        for a in range(0, n, CH):
            b = min(n, a + CH)
            words[a:b] = _read_words(ks, a, raw, b - a, np.dtype(np.uint64))
        return torch.from_numpy(np.argsort(words, kind="stable").astype(np.int64))

    # -- internals ------------------------------------------------------------------------
    def _next(self) -> int:
        self.draw += 1
        return self.draw - 1

    def _fill(self, t: Tensor, make: Callable[[bool], _Kernel]) -> Tensor:
        global _last_fill
        _check_float(t)
        win = self._window
        if win is not None and tuple(t.shape) not in (win.shape, win.squeezed_shape):
            raise ValueError(f"tensor shape {tuple(t.shape)} != window shape {win.shape}")
        kern = make(t.dtype == torch.float64)
        draw_key = _draw_key(self.key, self._next())
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
                _generate(kern, draw_key, out, flat, start, chunk)
                dest.copy_(torch.from_numpy(out).view(t.shape))
            elif dest.device.type == "cpu" and dest.dtype == _TORCH_DTYPE[np.dtype(kern.dtype)]:
                sums: _Sums | None = None
                if self.measure and win is None:
                    sums = []
                _generate(kern, draw_key, dest.view(-1).numpy(), flat, start, chunk, sums)
                version = _version(dest)
                if sums is not None and version is not None:
                    s1, s2 = math.fsum(a for a, _ in sums), math.fsum(b for _, b in sums)
                    self._moments = _Moments(fill, dest.data_ptr(), dest.numel(), dest.dtype,
                                             version, kern.center, s1, s2)  # fmt: skip
            else:  # another dtype or device: in pieces, so no full-size copy is made
                dest = dest.view(-1)
                n = dest.numel()
                buf = np.empty(min(n, _PIECE), kern.dtype)
                for a in range(0, n, _PIECE):
                    b = min(n, a + _PIECE)
                    sub = None if flat is None else flat[a:b]
                    _generate(kern, draw_key, buf[: b - a], sub, start + a, chunk)
                    dest[a:b].copy_(torch.from_numpy(buf[: b - a]))
        return t

    def achieved_std(self, t: Tensor) -> float | None:
        """The sample std of ``t`` from sums the last fill took while it wrote (chunk by
        chunk, in cache), or None unless that fill had ``measure`` set, wrote all of ``t``
        in place, and nothing has written to ``t`` since: ``t``'s version counter has not
        moved (torch in-place ops) and no stream has filled anything after it.

        The sums are about the law's centre (a normal's mean...), in the tensor's precision
        within a chunk and in float64 across chunks: within ~1e-7 (relative) of a float64
        std of the same values.
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
