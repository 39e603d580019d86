"""What the executor asks of a random source (addressable, fork, achieved_std), answered by
both sources without isinstance checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab import KeyedStream, RandomSource, TorchSource
from initlab.execute import fill_row, row_stream


def test_both_sources_implement_the_protocol() -> None:
    keyed, seq = KeyedStream(0, "w"), TorchSource(torch.Generator().manual_seed(0))
    assert isinstance(keyed, RandomSource) and isinstance(seq, RandomSource)
    assert keyed.addressable and not seq.addressable
    assert seq.fork("block:f") is seq  # a sequential source draws sub-steps in order
    assert keyed.fork("block:f").key == KeyedStream(0, "w").fork("block:f").key != keyed.key
    assert seq.achieved_std(torch.ones(3)) is None


def test_row_stream_is_keyed_by_the_rows_stream_name() -> None:
    row = initlab.plan(nn.Linear(3, 2), "kaiming", seed=5)["weight"]
    assert row.stream_name == "weight"
    assert row_stream(row).key == KeyedStream(5, "weight").key
    assert row_stream(row, measure=True).measure
    torch_row = initlab.plan(nn.Linear(3, 2), "kaiming", seed=None)["weight"]
    with pytest.raises(ValueError, match="rng='torch'; nothing to key"):
        row_stream(torch_row)


def test_a_window_needs_an_addressable_source() -> None:
    row = initlab.plan(nn.Linear(3, 2), "kaiming", seed=0)["weight"]
    with pytest.raises(TypeError, match="needs a keyed source"):
        fill_row(row, torch.empty(1, 3), TorchSource(), index=(slice(0, 1), slice(0, 3)))
