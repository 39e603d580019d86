"""Stream keys: blake2b-128 of versioned, unambiguous encodings."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["derive_key", "draw_key", "hash128"]


def hash128(*parts: bytes) -> int:
    """blake2b-128 of the concatenated ``parts``, read as a little-endian integer.

    Args:
        *parts: byte strings, concatenated (callers make the encoding unambiguous).

    Returns:
        An int in [0, 2**128).

    Example:
        >>> hash128(b"a", b"b") == hash128(b"ab"), hex(hash128(b"ab"))
        (True, '0xc7010db6aba5b256e1e2220222aec93d')
    """
    return int.from_bytes(hashlib.blake2b(b"".join(parts), digest_size=16).digest(), "little")


def derive_key(seed: int, name: str) -> int:
    r"""128-bit key: blake2b-128 of ``b"initlab-stream-v1\0" + decimal(seed) + b"\0" +
    utf8(name)``, read little-endian; unambiguous (no NUL in the seed, the name comes last).

    Args:
        seed: an int in [0, 2**64).
        name: the parameter's qualified name.

    Returns:
        The stream key, an int in [0, 2**128).

    Example:
        >>> hex(derive_key(0, "w"))
        '0xa3d0127ab1391ce71f7f8486cfd5f5f2'
        >>> derive_key(0, "w") != derive_key(0, "w2") != derive_key(1, "w")
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    return hash128(b"initlab-stream-v1\0", str(seed).encode(), b"\0", name.encode("utf-8"))


def draw_key(key: int, draw: int) -> int:
    r"""The key of draw ``draw`` of a stream: blake2b-128 of ``b"initlab-draw-v2\0"``, the stream
    key (16 bytes) and the draw number (8 bytes), all little-endian.

    Args:
        key: the stream key (:func:`derive_key`).
        draw: the draw number (0 for a stream's first fill).

    Returns:
        The draw's AES-128 key, an int in [0, 2**128).

    Example:
        >>> hex(draw_key(derive_key(0, "w"), 0))
        '0x54f5553087cc1c4a7cdac4fd828ae6a9'
    """
    return hash128(b"initlab-draw-v2\0", key.to_bytes(16, "little"), draw.to_bytes(8, "little"))
