"""Stream keys: blake2b-128 of versioned, unambiguous encodings."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["derive_key", "draw_key", "hash128"]


def hash128(*parts: bytes) -> int:
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
    return hash128(b"initlab-stream-v1\0", str(seed).encode(), b"\0", name.encode("utf-8"))


def draw_key(key: int, draw: int) -> int:
    return hash128(b"initlab-draw-v2\0", key.to_bytes(16, "little"), draw.to_bytes(8, "little"))
