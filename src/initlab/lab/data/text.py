"""Real text present on every machine: the Python standard library's own source files.

:func:`load_stdlib_text` reads the ``.py`` files under ``sysconfig.get_paths()["stdlib"]``
(third-party ``site-packages``/``dist-packages`` left out) in sorted order of their relative
paths, concatenated with one newline between files, until a byte budget is reached. Tokens are
bytes (a 256-symbol vocabulary): the standard library's sources are ASCII almost everywhere,
so this is a character-level model's vocabulary, fixed whatever the text. The first
``1 - val_fraction`` of the tokens are the training split, the rest validation. Nothing is
downloaded and nothing is shipped: the text differs between Python versions, so
``meta["sha256"]`` fingerprints what was read.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .core import DatasetError

__all__ = ["VOCAB_SIZE", "TextData", "load_stdlib_text", "text_batch"]

#: tokens are bytes
VOCAB_SIZE = 256
_THIRD_PARTY = {"site-packages", "dist-packages"}


@dataclass(frozen=True, eq=False, repr=False)
class TextData:
    """Byte tokens of a text, split into train and validation.

    Attributes:
        train, val: int64 token ids in ``0 .. 255``, 1-d.
        vocab_size: 256.
        meta: JSON-friendly facts: source folder, files read, bytes, sha256 of the text.

    Example:
        >>> data = load_stdlib_text(n_bytes=20_000)
        >>> data.train.numel() + data.val.numel(), data.vocab_size, data.train.dtype
        (20000, 256, torch.int64)
    """

    train: Tensor
    val: Tensor
    vocab_size: int = VOCAB_SIZE
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"TextData(train={self.train.numel()} tokens, val={self.val.numel()} tokens, "
            f"files={self.meta.get('files')}, sha256={str(self.meta.get('sha256'))[:12]})"
        )


def _stdlib_files(root: Path) -> list[Path]:
    files = [
        p
        for p in root.rglob("*.py")
        if p.is_file() and not _THIRD_PARTY.intersection(p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_stdlib_text(
    n_bytes: int = 2_000_000, *, val_fraction: float = 0.1, root: str | Path | None = None
) -> TextData:
    """The first ``n_bytes`` of the standard library's sources, as byte tokens.

    Args:
        n_bytes: the byte budget (the text is cut there).
        val_fraction: the share of tokens, at the end, held out for validation.
        root: the folder to read (default ``sysconfig.get_paths()["stdlib"]``).

    Returns:
        The :class:`TextData`.

    Raises:
        DatasetError: a bad budget or fraction, or a folder with too little text.

    Example:
        >>> a, b = load_stdlib_text(n_bytes=5_000), load_stdlib_text(n_bytes=5_000)
        >>> torch.equal(a.train, b.train), a.meta["sha256"] == b.meta["sha256"]
        (True, True)
    """
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes < 1000:
        raise DatasetError(f"stdlib text: n_bytes must be an integer >= 1000, got {n_bytes!r}")
    if isinstance(val_fraction, bool) or not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"stdlib text: val_fraction must be in (0, 1), got {val_fraction!r}")
    folder = Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    if not folder.is_dir():
        raise DatasetError(f"stdlib text: {folder} is not a folder; pass root= a source folder")
    chunks, size, used = [], 0, 0
    for path in _stdlib_files(folder):
        try:
            raw = path.read_bytes() + b"\n"
        except OSError:
            continue  # an unreadable file is skipped; the order of the others is unchanged
        chunks.append(raw[: n_bytes - size])
        size += len(chunks[-1])
        used += 1
        if size >= n_bytes:
            break
    if size < n_bytes:
        raise DatasetError(
            f"stdlib text: {folder} holds only {size} bytes of .py source, fewer than "
            f"n_bytes={n_bytes}; lower n_bytes"
        )
    text = b"".join(chunks)
    tokens = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
    n_val = max(1, round(len(tokens) * float(val_fraction)))
    meta = {
        "source": str(folder),
        "files": used,
        "bytes": len(text),
        "sha256": hashlib.sha256(text).hexdigest(),
        "val_fraction": float(val_fraction),
    }
    return TextData(tokens[:-n_val].clone(), tokens[-n_val:].clone(), VOCAB_SIZE, meta)


def text_batch(tokens: Tensor, batch_size: int, seq_len: int, generator: torch.Generator) -> Tensor:
    """``batch_size`` random windows of ``seq_len + 1`` tokens (inputs and next-token targets).

    Args:
        tokens: 1-d token ids.
        batch_size: windows per batch.
        seq_len: tokens a model sees; each window has one more, for the last target.
        generator: where the window starts are drawn from.

    Returns:
        ``[batch_size, seq_len + 1]`` int64.

    Example:
        >>> t = torch.arange(100)
        >>> b = text_batch(t, 2, 4, torch.Generator().manual_seed(0))
        >>> b.shape, bool((b[:, 1:] - b[:, :-1] == 1).all())
        (torch.Size([2, 5]), True)
    """
    if tokens.numel() <= seq_len + 1:
        raise DatasetError(f"text of {tokens.numel()} tokens is too short for seq_len={seq_len}")
    starts = torch.randint(0, tokens.numel() - seq_len - 1, (batch_size,), generator=generator)
    return torch.stack([tokens[s : s + seq_len + 1] for s in starts.tolist()])
