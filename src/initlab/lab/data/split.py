"""A stratified train/validation split: the indices of scikit-learn's, without importing it.

``train_test_split(X, y, test_size=f, stratify=y, random_state=seed)`` (scikit-learn's
``StratifiedShuffleSplit``) is the split the lab's digits use, and importing scikit-learn costs
about a second (it imports SciPy). :func:`stratified_split` draws the same indices with numpy's
legacy ``RandomState(seed)`` (its streams are frozen, NEP 19), in the same order of draws:

1. ``n_val = ceil(f * n)``, ``n_train = n - n_val``; each class's share of each side by
   ``_approximate_mode``: ``floor(count_c / n * draws)``, the rest added to the classes of
   largest remainder, ties broken by ``rng.choice(..., replace=False)`` (train first, then
   validation from what the train side left);
2. per class, in class order: ``rng.permutation(count_c)`` of the class's indices (in index
   order); its first ``train_c`` go to train, the next ``val_c`` to validation;
3. ``rng.permutation`` of the train indices, then of the validation indices.

tests/test_lab_data_split.py checks the indices against scikit-learn's for many seeds, sizes
and fractions.

>>> import numpy as np
>>> y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
>>> train, val = stratified_split(y, 0.25, seed=0)
>>> sorted([*train, *val]) == list(range(8)), y[val].tolist()  # one of each class held out
(True, [1, 0])
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SplitError", "stratified_split"]


class SplitError(ValueError):
    """A split that cannot be stratified (a class too small, a side smaller than the classes).

    Example:
        >>> stratified_split(np.array([0, 0, 1]), 0.5, seed=0)
        Traceback (most recent call last):
        ...
        initlab.lab.data.split.SplitError: classes [1] have 1 example: a stratified split ...
    """


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """``draws`` shared among the classes in proportion to ``counts`` (scikit-learn's
    ``_approximate_mode``: floors, then the largest remainders, ties drawn at random)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def stratified_split(
    y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices of a stratified split of labels ``y``.

    The indices of scikit-learn's ``train_test_split(..., test_size=val_fraction, stratify=y,
    random_state=seed)`` (see the module doc for the draws).

    Args:
        y: the labels, one per example (1-d, any sortable dtype).
        val_fraction: the validation share, in (0, 1); ``ceil(val_fraction * n)`` examples.
        seed: the ``numpy.random.RandomState`` seed.

    Returns:
        ``(train, val)``: int64 index arrays, each in its drawn (shuffled) order.

    Raises:
        SplitError: a class with fewer than 2 examples, or a side with fewer examples than
            there are classes.

    Example:
        >>> train, val = stratified_split(np.arange(20) % 2, 0.3, seed=1)
        >>> len(train), len(val), sorted(np.bincount(np.arange(20)[val] % 2).tolist())
        (14, 6, [3, 3])
    """
    y = np.asarray(y)
    n = y.shape[0]
    n_val = math.ceil(val_fraction * n)
    n_train = n - n_val
    classes, y_indices, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        small = classes[counts < 2].tolist()
        raise SplitError(f"classes {small} have 1 example: a stratified split needs 2 per class")
    for side, size in (("train", n_train), ("validation", n_val)):
        if size < len(classes):
            raise SplitError(
                f"the {side} side would hold {size} examples, fewer than the {len(classes)} "
                "classes: change the validation fraction"
            )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_val, rng)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for i in range(len(classes)):
        members = class_indices[i].take(rng.permutation(counts[i]), mode="clip")
        train.append(members[: n_i[i]])
        val.append(members[n_i[i] : n_i[i] + t_i[i]])
    return (
        rng.permutation(np.concatenate(train)).astype(np.int64),
        rng.permutation(np.concatenate(val)).astype(np.int64),
    )
