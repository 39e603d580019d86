"""CIFAR-10 python batches, read with a restricted unpickler (never plain pickle.load)."""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...syntax import format_spec
from .core import (
    _NEVER_DOWNLOADS,
    Dataset,
    DatasetError,
    _apply_limit,
    _byte_stats,
    _finish,
    _scale_bytes,
)
from .idx import _folder

# --------------------------------------------------------------------------- CIFAR-10


def _reconstruct() -> Callable[..., Any]:
    try:
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct as fn  # type: ignore[no-redef]
    return fn


def _frombuffer() -> Callable[..., Any]:
    try:
        from numpy._core.numeric import _frombuffer as fn
    except ImportError:  # numpy < 2
        from numpy.core.numeric import _frombuffer as fn  # type: ignore[no-redef]
    return fn


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(obj, str) or encoding.lower().replace("-", "") not in ("latin1", "l1"):
        raise DatasetError(
            f"cifar10: pickle calls _codecs.encode with {type(obj).__name__} and "
            f"{encoding!r}; only latin-1 text (bytes in a protocol-2 pickle) is allowed"
        )
    return codecs.encode(obj, "latin1", errors)


_PICKLE_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch; every global other than numpy array rebuilding is refused."""

    def __init__(self, file: Any, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        make = _PICKLE_ALLOWED.get((module, name))
        if make is None:
            raise DatasetError(
                f"cifar10: {self._source} asks to load {module}.{name}, which a CIFAR-10 batch "
                "never needs; refusing to unpickle it (expected a python-version CIFAR-10 batch)"
            )
        return make()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            obj = _CifarUnpickler(f, path).load()
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(
            f"cifar10: cannot read {path} as a CIFAR-10 python batch: {type(e).__name__}: "
            f"{' '.join(str(e).split())}"  # one line, whatever the wrapped error says
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError(
            f"cifar10: {path} holds a {type(obj).__name__}, expected a dict with b'data' and "
            "b'labels'"
        )
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        found = ", ".join(repr(k) for k in obj) or "none"
        raise DatasetError(
            f"cifar10: {path} lacks key b'{missing[0]}' (keys: {found}); expected b'data' and "
            "b'labels'"
        )
    data, labels = batch["data"], batch["labels"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3072
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DatasetError(f"cifar10: {path} b'data' is a {desc}, expected uint8 [N, 3072]")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        y = labels.astype(np.int64)
    elif isinstance(labels, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    else:
        raise DatasetError(f"cifar10: {path} b'labels' must be a list of ints in 0..9")
    if y.shape[0] != data.shape[0]:
        raise DatasetError(f"cifar10: {path} has {data.shape[0]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DatasetError(f"cifar10: {path} has label {bad}, expected 0..9")
    return data, y


def _cifar10(
    opts: dict[str, Any], *, seed: int, val_fraction: float, image: bool, limit: int | None
) -> Dataset:
    root = _folder("cifar10", opts, "the CIFAR-10 python batches")
    inner = root / "cifar-10-batches-py"
    folder = inner if (inner / "data_batch_1").is_file() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for base in names:
        path = folder / base
        if not path.is_file():
            raise DatasetError(
                f"cifar10: expected {base} in {folder} (not found); extract the CIFAR-10 python "
                f"version there yourself — {_NEVER_DOWNLOADS}"
            )
        batches[base] = _read_cifar_batch(path)
    x_tr = np.concatenate([batches[b][0] for b in names[:5]])
    y_tr = np.concatenate([batches[b][1] for b in names[:5]])
    x_tr, y_tr = _apply_limit(x_tr, y_tr, limit)
    x_tr = x_tr.reshape(-1, 3, 32, 32)
    x_va, y_va = batches["test_batch"]
    x_va = x_va.reshape(-1, 3, 32, 32)
    stats = [_byte_stats(x_tr[:, c]) for c in range(3)]
    means = [m for m, _ in stats]
    stds = [s if s > 1e-6 else 1.0 for _, s in stats]
    mean_t = torch.tensor(means).view(3, 1, 1)
    std_t = torch.tensor(stds).view(3, 1, 1)
    shape = (-1, 3, 32, 32) if image else (-1, 3072)
    meta = {
        "source": "CIFAR-10 python batches",
        "spec": format_spec("cifar10", {"path": str(root)}),
        "folder": str(folder),
        "split": {"train": "data_batch_1..5", "val": "test_batch", "val_fraction": None},
        "limit": limit,
        "standardisation": {"kind": "per-channel", "scale": "x / 255", "mean": means, "std": stds},
    }
    return _finish(
        "cifar10",
        _scale_bytes(x_tr, mean_t, std_t).reshape(shape),
        y_tr,
        _scale_bytes(x_va, mean_t, std_t).reshape(shape),
        y_va,
        10,
        meta,
    )
