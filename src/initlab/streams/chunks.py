"""The chunk engine: a tensor's values are computed chunk by chunk, whole chunks always.

A tensor of N elements is cut into chunks of ``chunk_size(N)`` elements; chunk ``c`` reads
words ``[c·C, (c+1)·C)`` and is always computed whole by the same ops on same-length arrays,
then cut or gathered, so no value depends on the slice requested, SIMD tails or threads.
"""

from __future__ import annotations

import numpy as np

from .bits import Keystream, read_words
from .kernels import Kernel, Scratch, Sums, sums_of
from .pool import get_pool

__all__ = ["CH", "chunk_size", "generate"]

CH = 1 << 17  #: the largest chunk (elements); part of the stream's definition with chunk_size
_MIN_CH = 64  #: the smallest chunk
_INLINE_ELEMS = 1 << 11  # fills of at most this many chunk elements run in the calling thread
_BATCH_ELEMS = 1 << 19  # whole chunks are computed up to this many elements per kernel call


def chunk_size(numel: int) -> int:
    """Elements per chunk for a tensor of ``numel`` elements: the power of two >= numel,
    clamped to [64, CH] (so a bias costs a small chunk, a large matrix many CH chunks).

    Args:
        numel: the tensor's number of elements.

    Returns:
        The chunk size C; chunk ``c`` covers flat elements ``[c·C, (c+1)·C)``.

    Example:
        >>> chunk_size(1), chunk_size(100), chunk_size(10**7) == CH
        (64, 128, True)
    """
    return min(CH, max(_MIN_CH, 1 << max(0, numel - 1).bit_length()))


def generate(
    kern: Kernel,
    draw_key: int,
    out: np.ndarray,
    flat: np.ndarray | None,
    start: int,
    chunk: int,
    moments: Sums | None = None,
) -> None:
    """Write into ``out`` the values at flat indices ``flat`` of a tensor whose chunks have
    ``chunk`` elements.

    Every chunk touched is computed whole from its words (so no value depends on which slice is
    asked for), then cut; large requests run on the thread pool.

    Args:
        kern: the distribution's chunk kernel.
        draw_key: the draw's key (:func:`initlab.streams.keys.draw_key`).
        out: the output array (``kern.dtype``), written in place.
        flat: increasing global flat indices, one per element of ``out``; None: the contiguous
            range ``start .. start + out.size - 1``, as cheap per element as a whole fill.
        start: the first flat index when ``flat`` is None.
        chunk: the tensor's chunk size (:func:`chunk_size` of its numel).
        moments: gets, per kernel call (one or more chunks), the sums of ``x - kern.center``
            and of its square over the values written (while they are in cache).

    Example:
        >>> from initlab.streams.kernels import Uniform
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> key, kern = draw_key(derive_key(0, "w"), 0), Uniform(0.0, 1.0, f64=False)
        >>> full, part = np.empty(8, np.float32), np.empty(3, np.float32)
        >>> generate(kern, key, full, None, 0, chunk_size(8))
        >>> generate(kern, key, part, None, 2, chunk_size(8))  # elements 2..4 alone
        >>> bool((part == full[2:5]).all()), full[:2].tolist()
        (True, [0.04490870237350464, 0.1514464020729065])
    """
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
    per_call = max(1, _BATCH_ELEMS // chunk)  # whole chunks computed by one kernel call

    def work(i0: int, i1: int) -> None:
        ks = Keystream(draw_key)
        raw = bytearray(min(i1 - i0, per_call) * chunk * word.itemsize + 16)
        tmp = Scratch()
        i = i0
        while i < i1:
            c, p0, p1 = int(chunks[i]), int(pos[i]), int(pos[i + 1])
            if p1 - p0 == chunk:  # whole chunks are wanted: compute them in place, together
                k = 1
                while (  # the next chunk follows this one and is wanted whole too
                    k < per_call
                    and i + k < i1
                    and int(chunks[i + k]) == c + k
                    and int(pos[i + k + 1]) - int(pos[i + k]) == chunk
                ):
                    k += 1
                words = read_words(ks, c * chunk, raw, k * chunk, word)
                kern(words, out[p0 : p0 + k * chunk], tmp, moments, chunk)
                i += k
                continue
            words = read_words(ks, c * chunk, raw, chunk, word)
            i += 1
            buf = tmp.get_array("chunk", chunk, kern.dtype)
            kern(words, buf, tmp)
            if flat is None:
                off = start - c * chunk
                out[p0:p1] = buf[p0 + off : p1 + off]
            else:
                np.take(buf, flat[p0:p1] - c * chunk, out=out[p0:p1])
            if moments is not None:
                moments.append(sums_of(out[p0:p1], kern.center, tmp))

    m = chunks.size
    if m * chunk <= _INLINE_ELEMS:  # tiny: not worth a thread hop
        work(0, m)
        return
    pool, threads = get_pool()
    groups = min(m, 2 * threads)  # contiguous runs (one key schedule each), some balance
    bounds = [m * g // groups for g in range(groups + 1)]
    for f in [pool.submit(work, bounds[g], bounds[g + 1]) for g in range(groups)]:
        f.result()
