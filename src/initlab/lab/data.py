"""Data sets for the lab: small, local, deterministic, never downloaded.

``load_dataset(spec)`` returns a :class:`Dataset` of float32 inputs and int64 labels, split into
train and validation, with inputs standardised by statistics of the training split only.

Specs (``name:key=value,...``, see :mod:`initlab.lab.specs`):

``digits`` (default)
    scikit-learn's bundled 8x8 digits (1,797 images, 10 classes). The train/validation split
    is stratified and **fixed**: ``train_test_split(..., stratify=y, random_state=split_seed)``
    with ``split_seed=0`` unless the spec says otherwise; the ``seed`` argument never changes
    it, so every run compares on the same split. Standardised per pixel with train mean/std;
    pixels that are constant on the train split (std < 1e-6) are only centred (std taken as 1),
    so they stay 0 instead of exploding on validation. ``image=True`` gives ``[N, 1, 8, 8]``
    (the same numbers, reshaped), else ``[N, 64]``.
``synthetic``
    ``synthetic:kind=gaussian|teacher,n=2000,dim=32,classes=4,seed=...,noise=0.0`` (``kind``
    may be given bare: ``synthetic:teacher``). ``gaussian`` (default): balanced classes with
    unit covariance around class means that are exactly ``sep`` (default 3.0) apart pairwise
    (a randomly rotated regular simplex; when ``classes > dim``, random points at radius
    ``sep/sqrt(2)``, about ``sep`` apart). ``teacher``: inputs ``N(0, I)`` labelled by the
    argmax of a random one-hidden-layer tanh MLP (``hidden=64`` units; logits centred over the
    sample so classes are roughly balanced). ``noise`` replaces that fraction of labels by
    uniform random ones. ``n`` counts train + validation; the split is a random one of
    ``val_fraction``. Everything comes from one ``numpy.random.Generator`` seeded by the spec's
    ``seed`` or, when the spec has none, by the ``seed`` argument (never global RNG state).
    Standardised per feature with train statistics. Flat only: ``image=True`` is an error.
``mnist:PATH`` / ``fashion-mnist:PATH``
    The four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``) in ``PATH``
    (or in ``PATH/raw`` or torchvision's ``PATH/MNIST/raw`` / ``PATH/FashionMNIST/raw``).
    t10k is the validation split (``val_fraction`` is not used). Headers, sizes, labels (0..9)
    and counts are validated. Pixels are scaled to [0, 1] then standardised with the mean and
    std of the training images actually used (after ``limit``), one scalar each; for the full
    MNIST train set that is the usual 0.1307 / 0.3081. ``image=True`` gives ``[N, 1, 28, 28]``,
    else ``[N, 784]``.
``cifar10:PATH``
    The python-version batches ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` in
    ``PATH`` (or ``PATH/cifar-10-batches-py``); ``test_batch`` is the validation split. They
    are pickles, read with a restricted unpickler that admits only numpy array reconstruction
    (and ``_codecs.encode`` for latin-1, which Python 3 protocol-2 pickles use for bytes):
    anything else raises :class:`DatasetError` before it runs. Scaled to [0, 1], standardised
    per channel with train statistics. ``image=True`` gives ``[N, 3, 32, 32]``, else
    ``[N, 3072]`` (channel-major, as stored).

``limit`` keeps the first ``limit`` training examples (of the fixed split for digits and
synthetic; of the file order for MNIST and CIFAR-10), before standardisation statistics are
computed. Validation sets are never cut.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import math
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .specs import SpecError, format_spec, parse_spec

__all__ = ["DATASETS", "Dataset", "DatasetError", "load_dataset"]

_NEVER_DOWNLOADS = "initlab never downloads"

DATASETS: dict[str, str] = {
    "digits": "scikit-learn's bundled 8x8 digits, 10 classes, fixed stratified split",
    "synthetic": "Gaussian classes or a random teacher MLP; any size, seeded",
    "mnist": "MNIST from local IDX files: mnist:PATH",
    "fashion-mnist": "Fashion-MNIST from local IDX files: fashion-mnist:PATH",
    "cifar10": "CIFAR-10 python batches from a local folder: cifar10:PATH",
}
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}


class DatasetError(ValueError):
    """A data set that cannot be loaded; the message is one line saying what was expected where."""


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


# --------------------------------------------------------------------------- digits


def _digits(
    opts: dict[str, Any], *, seed: int, val_fraction: float, image: bool, limit: int | None
) -> Dataset:
    o = _options("digits", opts, {"split_seed": 0})
    split_seed = _int_option("digits", "split_seed", o["split_seed"], 0)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise DatasetError(
            f"digits: needs scikit-learn (pip install scikit-learn); import failed: {e}"
        ) from None
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=val_fraction, stratify=y, random_state=split_seed
    )
    x_tr, y_tr = _apply_limit(x_tr, y_tr, limit)
    x_tr, x_va, stats = _standardise_features(x_tr, x_va)
    shape = (-1, 1, 8, 8) if image else (-1, 64)
    meta = {
        "source": "sklearn.datasets.load_digits",
        "spec": format_spec("digits", {"split_seed": split_seed}),
        "split": {
            "method": "sklearn.model_selection.train_test_split(stratify=y)",
            "random_state": split_seed,
            "val_fraction": val_fraction,
            "depends_on_seed": False,
        },
        "limit": limit,
        "standardisation": stats,
    }
    return _finish(
        "digits",
        _to_float_tensor(x_tr).reshape(shape),
        y_tr,
        _to_float_tensor(x_va).reshape(shape),
        y_va,
        10,
        meta,
    )


# --------------------------------------------------------------------------- synthetic

_SYNTH_COMMON = {"kind": "gaussian", "n": 2000, "dim": 32, "classes": 4, "seed": None, "noise": 0.0}
_SYNTH_KIND = {"gaussian": {"sep": 3.0}, "teacher": {"hidden": 64}}


def _synthetic(
    opts: dict[str, Any], *, seed: int, val_fraction: float, image: bool, limit: int | None
) -> Dataset:
    opts = dict(opts)
    if "path" in opts:
        if "kind" in opts:
            raise DatasetError("synthetic: give the kind once (synthetic:KIND or kind=KIND)")
        opts["kind"] = opts.pop("path")
    kind = opts.get("kind", "gaussian")
    if kind not in _SYNTH_KIND:
        raise DatasetError(
            f"synthetic: unknown kind {kind!r} (kinds: {', '.join(sorted(_SYNTH_KIND))})"
        )
    o = _options(f"synthetic (kind={kind})", opts, {**_SYNTH_COMMON, **_SYNTH_KIND[kind]})
    if image:
        raise DatasetError(
            "synthetic: data is flat (dim,); image=True needs digits, mnist, fashion-mnist "
            "or cifar10"
        )
    n = _int_option("synthetic", "n", o["n"], 2)
    dim = _int_option("synthetic", "dim", o["dim"], 1)
    classes = _int_option("synthetic", "classes", o["classes"], 2)
    noise = _float_option("synthetic", "noise", o["noise"], 0.0, 1.0)
    data_seed = seed if o["seed"] is None else o["seed"]
    data_seed = _int_option("synthetic", "seed", data_seed, 0)
    n_val = round(n * val_fraction)
    if n_val < 1 or n - n_val < 1:
        raise DatasetError(
            f"synthetic: n={n} with val_fraction={val_fraction} leaves an empty split"
        )
    rng = np.random.default_rng(data_seed)
    used: dict[str, Any] = {
        "kind": kind,
        "n": n,
        "dim": dim,
        "classes": classes,
        "noise": noise,
        "seed": data_seed,
    }
    if kind == "gaussian":
        sep = _float_option("synthetic", "sep", o["sep"], 0.0, math.inf)
        used["sep"] = sep
        if classes <= dim:
            q, _ = np.linalg.qr(rng.standard_normal((dim, classes)))
            means = q.T - q.T.mean(axis=0)  # orthonormal rows, centred: pairwise sqrt(2)
        else:
            u = rng.standard_normal((classes, dim))
            means = u / np.linalg.norm(u, axis=1, keepdims=True)
        means = means * (sep / math.sqrt(2.0))
        y = rng.permutation(np.arange(n) % classes)
        x = means[y] + rng.standard_normal((n, dim))
    else:
        hidden = _int_option("synthetic", "hidden", o["hidden"], 1)
        used["hidden"] = hidden
        x = rng.standard_normal((n, dim))
        w1 = rng.standard_normal((dim, hidden)) / math.sqrt(dim)
        b1 = 0.1 * rng.standard_normal(hidden)
        w2 = rng.standard_normal((hidden, classes)) / math.sqrt(hidden)
        logits = np.tanh(x @ w1 + b1) @ w2
        y = np.argmax(logits - logits.mean(axis=0), axis=1)
    y = y.astype(np.int64)
    flip = rng.random(n) < noise
    y[flip] = rng.integers(0, classes, int(flip.sum()))
    order = rng.permutation(n)
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_tr, y_tr = _apply_limit(x[train_idx], y[train_idx], limit)
    x_tr, x_va, stats = _standardise_features(x_tr, x[val_idx])
    meta = {
        "source": "synthetic",
        "spec": format_spec("synthetic", used),
        "options": used,
        "split": {"method": "random permutation", "seed": data_seed, "val_fraction": val_fraction},
        "limit": limit,
        "standardisation": stats,
    }
    return _finish(
        "synthetic",
        _to_float_tensor(x_tr),
        y_tr,
        _to_float_tensor(x_va),
        y[val_idx],
        classes,
        meta,
    )


# --------------------------------------------------------------------------- IDX (MNIST)

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
_IDX_HOME = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "Fashion-MNIST")}


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
            f"cifar10: cannot read {path} as a CIFAR-10 python batch: {type(e).__name__}: {e}"
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


# --------------------------------------------------------------------------- entry point

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "synthetic": _synthetic,
    "mnist": lambda opts, **kw: _idx("mnist", opts, **kw),
    "fashion-mnist": lambda opts, **kw: _idx("fashion-mnist", opts, **kw),
    "cifar10": _cifar10,
}


def load_dataset(
    spec: str = "digits",
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    image: bool = False,
    limit: int | None = None,
) -> Dataset:
    """Load the data set named by ``spec`` (see the module docstring for every spec).

    Args:
        spec: ``"digits"``, ``"synthetic:kind=teacher,n=5000"``, ``"mnist:/data/mnist"``, ...
        seed: seeds only what the spec leaves random: the synthetic generator when the spec
            has no ``seed=``. It never changes the digits split or the file-based data sets.
        val_fraction: the share held out for validation (digits, synthetic); MNIST and
            CIFAR-10 use their test files instead.
        image: ``[N, C, H, W]`` inputs (for CNNs) instead of flat ``[N, C*H*W]``.
        limit: keep at most this many training examples (validation is never cut).

    Raises:
        DatasetError: an unknown name or option, a missing folder or file, a malformed file.
    """
    try:
        name, opts = parse_spec(spec)
    except SpecError as e:
        raise DatasetError(str(e)) from None
    key = _ALIASES.get(name.lower(), name.lower())
    loader = _LOADERS.get(key)
    if loader is None:
        raise DatasetError(
            f"unknown data set {name!r} in spec {spec!r} (known: {', '.join(DATASETS)})"
        )
    if isinstance(val_fraction, bool) or not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"{key}: val_fraction must be in (0, 1), got {val_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DatasetError(f"{key}: limit must be a positive integer or None, got {limit!r}")
    return loader(opts, seed=seed, val_fraction=float(val_fraction), image=bool(image), limit=limit)
