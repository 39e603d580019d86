"""MNIST / Fashion-MNIST from local IDX files (raw or gzipped), validated."""

from __future__ import annotations

import gzip
import math
import zlib
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
    _options,
    _scale_bytes,
)

# --------------------------------------------------------------------------- IDX (MNIST)

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
_IDX_HOME = {"mnist": ("MNIST", "MNIST"), "fashion_mnist": ("FashionMNIST", "Fashion-MNIST")}


def _folder(name: str, opts: dict[str, Any], what: str) -> Path:
    o = _options(name, opts, {"path": None})
    if o["path"] is None:
        raise DatasetError(
            f"{name}: needs the folder holding {what}, e.g. '{name}:/data/{name}' "
            f"({_NEVER_DOWNLOADS})"
        )
    folder = Path(str(o["path"])).expanduser()
    if not folder.is_dir():
        raise DatasetError(
            f"{name}: expected a folder with {what} at {folder} (not found); put the files "
            f"there yourself — {_NEVER_DOWNLOADS}"
        )
    return folder


def _find_file(folder: Path, base: str) -> Path | None:
    for candidate in (base, base + ".gz"):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def _read_bytes(name: str, path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{name}: cannot read {path}: {type(e).__name__}: {e}") from None


def _parse_idx(name: str, path: Path, data: bytes, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions, validated."""
    kind = "images" if ndim == 3 else "labels"
    expected = 0x800 | ndim
    if len(data) < 4:
        raise DatasetError(f"{name}: {path} is {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected:
        raise DatasetError(
            f"{name}: {path} has magic 0x{magic:08x}, expected 0x{expected:08x} "
            f"(IDX {kind}, unsigned bytes, {ndim} dims)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name}: {path} is truncated inside its IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    if len(data) != header + size:
        raise DatasetError(
            f"{name}: {path} is {len(data)} bytes, expected {header + size} for IDX {kind} of "
            f"shape {dims} (truncated or corrupt)"
        )
    if 0 in dims:
        raise DatasetError(f"{name}: {path} holds no data (shape {dims})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _idx(
    name: str,
    opts: dict[str, Any],
    *,
    seed: int,
    val_fraction: float,
    image: bool,
    limit: int | None,
) -> Dataset:
    what = "the MNIST-format IDX files"
    root = _folder(name, opts, what)
    home, title = _IDX_HOME[name]
    folder = next(
        (
            f
            for f in (root, root / "raw", root / home / "raw")
            if _find_file(f, _IDX_FILES["train_images"]) is not None
        ),
        root,
    )
    arrays: dict[str, np.ndarray] = {}
    for key, base in _IDX_FILES.items():
        path = _find_file(folder, base)
        if path is None:
            raise DatasetError(
                f"{name}: expected {base}[.gz] in {folder} (not found); download {title} "
                f"there yourself — {_NEVER_DOWNLOADS}"
            )
        ndim = 3 if key.endswith("images") else 1
        arrays[key] = _parse_idx(name, path, _read_bytes(name, path), ndim)
    for split, base in (("train", "train"), ("val", "t10k")):
        n_img, n_lab = arrays[f"{split}_images"].shape[0], arrays[f"{split}_labels"].shape[0]
        if n_img != n_lab:
            raise DatasetError(
                f"{name}: {base}-images has {n_img} images but {base}-labels has {n_lab} "
                f"labels in {folder}"
            )
        top = int(arrays[f"{split}_labels"].max())
        if top > 9:
            raise DatasetError(f"{name}: {base}-labels in {folder} has label {top}, expected 0..9")
    if arrays["train_images"].shape[1:] != arrays["val_images"].shape[1:]:
        raise DatasetError(
            f"{name}: train images are {arrays['train_images'].shape[1:]} but t10k images are "
            f"{arrays['val_images'].shape[1:]} in {folder}"
        )
    x_tr, y_tr = _apply_limit(arrays["train_images"], arrays["train_labels"], limit)
    mean, std = _byte_stats(x_tr)
    std = std if std > 1e-6 else 1.0
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    rows, cols = x_tr.shape[1:]
    shape = (-1, 1, rows, cols) if image else (-1, rows * cols)
    meta = {
        "source": f"{title} IDX files",
        "spec": format_spec(name, {"path": str(root)}),
        "folder": str(folder),
        "split": {"train": "train-*", "val": "t10k-*", "val_fraction": None},
        "limit": limit,
        "standardisation": {"kind": "global", "scale": "x / 255", "mean": mean, "std": std},
    }
    return _finish(
        name,
        _scale_bytes(x_tr, mean_t, std_t).reshape(shape),
        y_tr,
        _scale_bytes(arrays["val_images"], mean_t, std_t).reshape(shape),
        arrays["val_labels"],
        10,
        meta,
    )
