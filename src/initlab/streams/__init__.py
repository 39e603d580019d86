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

Limitations: the integer bits are identical everywhere; log, sin and cos (numpy's SIMD
kernels; float64 sin and cos: torch's) and ndtri (torch's) are chosen per CPU, so bitwise
equality of normal values across CPU families (e.g. AVX2 vs AVX-512) or numpy/torch versions is
not promised, only on one machine and software stack. The domain tags, ``CH`` and the chunk
rule version the stream. One stream object should not be drawn from by several threads at once.
"""

from .chunks import CH, chunk_size
from .keys import derive_key
from .pool import get_num_threads, set_num_threads
from .stream import KeyedStream

__all__ = ["CH", "KeyedStream", "chunk_size", "derive_key", "get_num_threads", "set_num_threads"]
