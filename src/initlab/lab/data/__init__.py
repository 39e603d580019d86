"""Data sets for the lab: small, local, deterministic, never downloaded.

``load_dataset(spec)`` returns a :class:`Dataset` of float32 inputs and int64 labels, split into
train and validation, with inputs standardised by statistics of the training split only.

Specs (``name:key=value,...``, see :mod:`initlab.syntax`):

``digits`` (default)
    scikit-learn's bundled 8x8 digits (1,797 images, 10 classes). The train/validation split
    is stratified and **fixed**: ``train_test_split(..., stratify=y, random_state=split_seed)``
    with ``split_seed=0`` unless the spec says otherwise (the same indices, drawn by
    :func:`~initlab.lab.data.split.stratified_split` from the CSV file scikit-learn ships,
    without importing scikit-learn); the ``seed`` argument never changes it, so every run
    compares on the same split. Standardised per pixel with train mean/std;
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
``mnist:PATH`` / ``fashion_mnist:PATH``
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

from collections.abc import Callable

from ...syntax import SpecError, canonical_name, parse_spec
from .cifar import _cifar10
from .core import Dataset, DatasetError
from .idx import _idx
from .tabular import _digits, _synthetic

__all__ = ["DATASETS", "Dataset", "DatasetError", "load_dataset"]

DATASETS: dict[str, str] = {
    "digits": "scikit-learn's bundled 8x8 digits, 10 classes, fixed stratified split",
    "synthetic": "Gaussian classes or a random teacher MLP; any size, seeded",
    "mnist": "MNIST from local IDX files: mnist:PATH",
    "fashion_mnist": "Fashion-MNIST from local IDX files: fashion_mnist:PATH",
    "cifar10": "CIFAR-10 python batches from a local folder: cifar10:PATH",
}
_ALIASES = {  # keys as canonical_name writes them ("Fashion-MNIST" -> "fashion_mnist")
    "fashionmnist": "fashion_mnist",
    "cifar_10": "cifar10",
}


# --------------------------------------------------------------------------- entry point

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "synthetic": _synthetic,
    "mnist": lambda opts, **kw: _idx("mnist", opts, **kw),
    "fashion_mnist": lambda opts, **kw: _idx("fashion_mnist", opts, **kw),
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

    Returns:
        The :class:`Dataset`.

    Example:
        >>> data = load_dataset("synthetic:n=200,dim=8,classes=3")
        >>> data.x_train.shape, data.x_val.shape, data.num_classes, data.input_shape
        (torch.Size([160, 8]), torch.Size([40, 8]), 3, (8,))
        >>> round(data.x_train.std().item(), 3)  # standardised with train statistics
        1.0
    """
    try:
        name, opts = parse_spec(spec)
    except SpecError as e:
        raise DatasetError(str(e)) from None
    key = _ALIASES.get(canonical_name(name), canonical_name(name))
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
