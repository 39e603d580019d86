"""The Dataset type, its error, and helpers shared by the loaders."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

_NEVER_DOWNLOADS = "initlab never downloads"


class DatasetError(ValueError):
    """A data set that cannot be loaded; the message is one line saying what was expected where.

    Example:
        >>> from initlab.lab import load_dataset
        >>> load_dataset("nosuch")
        Traceback (most recent call last):
        ...
        initlab.lab.data.core.DatasetError: unknown data set 'nosuch' in spec 'nosuch' (known: ...)
    """


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A classification data set split into train and validation.

    Attributes:
        name: the data set's name (``"digits"``, ``"mnist"``, ...); ``meta["spec"]`` holds the
            canonical spec with its options.
        x_train, x_val: float32 inputs, ``[N, *input_shape]``, standardised with train stats.
        y_train, y_val: int64 labels in ``0 .. num_classes - 1``, ``[N]``.
        num_classes: the number of classes.
        input_shape: the shape of one example: ``(64,)``, ``(1, 8, 8)``, ``(3, 32, 32)``, ...
        meta: JSON-friendly facts: source, split, standardisation statistics, sizes.

    Example:
        >>> from initlab.lab import load_dataset
        >>> data = load_dataset("synthetic:n=200,dim=8,classes=3")
        >>> data.name, data.n_train, data.n_val, data.y_train.dtype
        ('synthetic', 160, 40, torch.int64)
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """The number of training examples."""
        return int(self.y_train.shape[0])

    @property
    def n_val(self) -> int:
        """The number of validation examples."""
        return int(self.y_val.shape[0])

    def to(self, device: torch.device | str) -> Dataset:
        """The same data set with its tensors on ``device``."""
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_val={self.n_val}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


# --------------------------------------------------------------------------- helpers


def _options(name: str, opts: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise DatasetError(f"{name}: unknown option {unknown[0]!r} (options: {known})")
    return {**allowed, **opts}


def _int_option(name: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DatasetError(f"{name}: option {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _float_option(name: str, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise DatasetError(f"{name}: option {key} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _apply_limit(x: np.ndarray, y: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if limit is None:
        return x, y
    return x[:limit], y[:limit]


def _standardise_features(
    x_train: np.ndarray, x_val: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per-feature standardisation of 2-D float arrays with train statistics."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    constant = std < 1e-6
    std = np.where(constant, 1.0, std)
    stats = {
        "kind": "per-feature",
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "constant_features": int(constant.sum()),
        "std_floor": "features with train std < 1e-6 are only centred (std taken as 1)",
    }
    return (x_train - mean) / std, (x_val - mean) / std, stats


def _byte_stats(data: np.ndarray) -> tuple[float, float]:
    """Mean and std of uint8 values scaled to [0, 1], exactly and without a float copy."""
    counts = np.bincount(data.reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum()
    mean = float((counts * values).sum() / total)
    var = float((counts * (values - mean) ** 2).sum() / total)
    return mean, math.sqrt(var)


def _scale_bytes(data: np.ndarray, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 array -> float32 tensor ``(x / 255 - mean) / std`` (mean/std broadcast)."""
    if not (data.flags.c_contiguous and data.flags.writeable):
        data = np.array(data, dtype=np.uint8, order="C")  # torch wants writable memory
    out = torch.from_numpy(data).to(torch.float32)
    return out.div_(255.0).sub_(mean).div_(std)


def _finish(
    name: str,
    x_train: Tensor,
    y_train: np.ndarray,
    x_val: Tensor,
    y_val: np.ndarray,
    num_classes: int,
    meta: dict[str, Any],
) -> Dataset:
    input_shape = tuple(int(s) for s in x_train.shape[1:])
    meta = {**meta, "n_train": int(x_train.shape[0]), "n_val": int(x_val.shape[0])}
    meta["input_shape"] = list(input_shape)
    return Dataset(
        name=name,
        x_train=x_train.contiguous(),
        y_train=torch.from_numpy(np.asarray(y_train, dtype=np.int64).copy()),
        x_val=x_val.contiguous(),
        y_val=torch.from_numpy(np.asarray(y_val, dtype=np.int64).copy()),
        num_classes=num_classes,
        input_shape=input_shape,
        meta=meta,
    )


def _to_float_tensor(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
