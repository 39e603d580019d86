"""Built-in tabular data sets: scikit-learn's digits and synthetic classes."""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...syntax import format_spec
from .core import (
    Dataset,
    DatasetError,
    _apply_limit,
    _finish,
    _float_option,
    _int_option,
    _options,
    _standardise_features,
    _to_float_tensor,
)
from .split import SplitError, stratified_split

# --------------------------------------------------------------------------- digits


def _digits_table() -> np.ndarray:
    """scikit-learn's digits as its ``load_digits`` reads them: ``digits.csv.gz`` parsed by
    ``np.loadtxt``, ``[1797, 65]`` float64 (64 pixels, then the label). The file is found
    without importing scikit-learn (about a second: it imports SciPy); ``load_digits`` itself
    only where the package keeps it elsewhere."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("digits: needs scikit-learn (pip install scikit-learn)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return np.loadtxt(f, delimiter=",")
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DatasetError(
            f"digits: needs scikit-learn (pip install scikit-learn); import failed: {e}"
        ) from None
    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target]).astype(np.float64)


def _digits(
    opts: dict[str, Any], *, seed: int, val_fraction: float, image: bool, limit: int | None
) -> Dataset:
    o = _options("digits", opts, {"split_seed": 0})
    split_seed = _int_option("digits", "split_seed", o["split_seed"], 0)
    table = _digits_table()
    x = table[:, :-1]
    y = table[:, -1].astype(np.int64)
    try:
        train, val = stratified_split(y, val_fraction, split_seed)
    except SplitError as e:
        raise DatasetError(f"digits: {e}") from None
    x_tr, x_va, y_tr, y_va = x[train], x[val], y[train], y[val]
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
            "synthetic: data is flat (dim,); image=True needs digits, mnist, fashion_mnist "
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
