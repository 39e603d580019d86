"""Raw bits: AES-128 in counter mode (OpenSSL through the ``cryptography`` package).

Byte ``o`` of a draw is byte ``o % 16`` of AES-128(draw key, big-endian ``o // 16``); words are
read little-endian. AES runs in hardware (AES-NI, ARMv8 crypto) with the GIL released.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["Keystream", "read_words"]

_BIG_ENDIAN = sys.byteorder == "big"
_zero_bytes = b""  # grown on demand: the zeros AES-CTR encrypts into keystream


def _zeros(n: int) -> memoryview:
    """n zero bytes (a view of a shared buffer; a local reference, so another thread's
    regrowth cannot hand this call a shorter one)."""
    global _zero_bytes
    z = _zero_bytes
    if n > len(z):
        z = _zero_bytes = bytes(max(n, 1 << 20))  # calloc: untouched pages read as zeros
    return memoryview(z)[:n]


def _cipher(key: bytes, block: int) -> Any:
    """An AES-128-CTR encryptor whose first keystream block is AES(key, block)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()


class Keystream:
    """One draw's keystream, read from any byte offset.

    Byte ``o`` is byte ``o % 16`` of AES-128(draw key, the 128-bit big-endian integer
    ``o // 16``): AES-128 in counter mode, the AES generator of Salmon et al. 2011, "Parallel
    random numbers: as easy as 1, 2, 3", https://doi.org/10.1145/2063384.2063405. Consecutive
    reads go on without re-keying (same bytes either way). One thread's.

    Args:
        draw_key: the draw's 128-bit key (:func:`initlab.streams.keys.draw_key`).

    Example:
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> key = draw_key(derive_key(0, "w"), 0)
        >>> buf = bytearray(32 + 16)  # 16 bytes to spare
        >>> Keystream(key).read(0, buf, 32)
        >>> bytes(buf[:16]).hex()
        '21237f0b4631c52607fd0fe2dc083acf'
        >>> Keystream(key).read(8, buf, 8)  # any offset, alone
        >>> bytes(buf[:8]).hex()
        '07fd0fe2dc083acf'
    """

    __slots__ = ("_enc", "_key", "_pos")

    def __init__(self, draw_key: int) -> None:
        self._key = draw_key.to_bytes(16, "little")
        self._enc: Any = None
        self._pos = -1

    def read(self, start: int, buf: bytearray, nbytes: int) -> None:
        """``buf[:nbytes]`` <- keystream bytes ``[start, start + nbytes)``; ``buf`` has 16
        bytes to spare (OpenSSL's rule for update_into).
        """
        if self._enc is None or start != self._pos:
            block, skip = divmod(start, 16)
            self._enc = _cipher(self._key, block)
            if skip:
                self._enc.update(bytes(skip))
        self._enc.update_into(_zeros(nbytes), buf)
        self._pos = start + nbytes


def read_words(ks: Keystream, first: int, buf: bytearray, n: int, word: np.dtype) -> np.ndarray:
    """Words ``[first, first + n)`` of a draw as a native-endian view of ``buf``.

    Word ``w`` is keystream bytes ``[w·s, (w+1)·s)`` read little-endian (s = the word's size).

    Args:
        ks: the draw's keystream.
        first: the first word's index.
        buf: a buffer of at least ``n·s + 16`` bytes (overwritten; the result views it).
        n: the number of words.
        word: ``np.dtype(np.uint32)`` or ``np.dtype(np.uint64)``.

    Returns:
        An array of ``n`` words (a view of ``buf``).

    Example:
        >>> from initlab.streams.keys import derive_key, draw_key
        >>> ks = Keystream(draw_key(derive_key(0, "w"), 0))
        >>> words = read_words(ks, 0, bytearray(4 * 4 + 16), 4, np.dtype(np.uint32))
        >>> words.tolist(), hex(words[0])  # bytes 21 23 7f 0b, little-endian
        ([192881441, 650457414, 3792698631, 3476687068], '0xb7f2321')
    """
    ks.read(first * word.itemsize, buf, n * word.itemsize)
    words = np.frombuffer(buf, dtype=word, count=n)
    if _BIG_ENDIAN:
        words.byteswap(inplace=True)
    return words
