"""initlab.lab.data.split: the stratified split draws scikit-learn's indices, without it."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from initlab.lab import DatasetError, load_dataset
from initlab.lab.data.split import SplitError, stratified_split


def sklearn_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    train, val = train_test_split(
        np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed
    )
    return train, val


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(2, 40), min_size=2, max_size=7),
    fraction=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**31 - 1),
    shuffle_seed=st.integers(0, 1000),
)
def test_the_indices_are_sklearns(
    counts: list[int], fraction: float, seed: int, shuffle_seed: int
) -> None:
    """Uneven classes (ties in the remainders), any fraction, labels in any order."""
    y = np.repeat(np.arange(len(counts)) * 3 - 2, counts)  # negative, gapped class values
    y = np.random.default_rng(shuffle_seed).permutation(y)
    try:
        want = sklearn_split(y, fraction, seed)
    except ValueError:  # a side too small for the classes: ours refuses too
        with pytest.raises(SplitError):
            stratified_split(y, fraction, seed)
        return
    got = stratified_split(y, fraction, seed)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert got[0].dtype == np.int64


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
@pytest.mark.parametrize("fraction", [0.2, 0.05, 0.5])
def test_the_digits_split_is_sklearns(seed: int, fraction: float) -> None:
    y = load_digits().target
    got, want = stratified_split(y, fraction, seed), sklearn_split(y, fraction, seed)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_digits_are_bit_identical_to_the_sklearn_path() -> None:
    """load_dataset('digits') equals the former loader: load_digits + train_test_split,
    standardised with train statistics."""
    bunch = load_digits()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, stratify=y, random_state=3)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.where(std < 1e-6, 1.0, std)
    d = load_dataset("digits:split_seed=3")
    assert torch.equal(d.y_train, torch.from_numpy(y_tr))
    assert torch.equal(d.y_val, torch.from_numpy(y_va))
    assert torch.equal(d.x_train, torch.from_numpy((x_tr - mean) / std).float())
    assert torch.equal(d.x_val, torch.from_numpy((x_va - mean) / std).float())


def test_unsplittable_inputs_are_one_line_errors() -> None:
    with pytest.raises(SplitError, match=r"classes \[5\] have 1 example"):
        stratified_split(np.array([0, 0, 5, 0]), 0.5, 0)
    with pytest.raises(SplitError, match="validation side would hold 1 examples, fewer than"):
        stratified_split(np.array([0, 0, 1, 1, 1]), 0.1, 0)
    with pytest.raises(DatasetError, match="digits: the validation side would hold 2 examples"):
        load_dataset("digits", val_fraction=0.001)


def test_digits_without_the_csv_file_fall_back_to_load_digits(monkeypatch, tmp_path) -> None:
    """Where scikit-learn keeps no digits.csv.gz at the usual place, load_digits reads it: the
    same data; without scikit-learn, a one-line error saying what to install."""
    real = importlib.util.find_spec
    elsewhere = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    elsewhere.submodule_search_locations = [str(tmp_path)]  # no datasets/data/digits.csv.gz
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: elsewhere if name == "sklearn" else real(name, *a),
    )
    fallback = load_dataset("digits")
    monkeypatch.undo()
    direct = load_dataset("digits")
    assert torch.equal(fallback.x_train, direct.x_train)
    assert torch.equal(fallback.y_val, direct.y_val)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    with pytest.raises(
        DatasetError, match=r"^digits: needs scikit-learn \(pip install scikit-learn\)$"
    ):
        load_dataset("digits")
