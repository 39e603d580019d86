"""Buffers made real on materialisation: bad initialisers refused before allocation, failures
named.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.execute import MaterializeError


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class WithTable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("pos", torch.arange(6.0))


def _meta_table() -> nn.Module:
    with torch.device("meta"):
        return WithTable()


def _all_meta(m: nn.Module) -> bool:
    return all(t.is_meta for t in [*m.parameters(), *m.buffers()])


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("zeros", r"buffer 'pos': initialiser must be a number, a tensor or a callable, got str"),
        (torch.ones(4), r"buffer 'pos': .*shape \(4,\), which does not broadcast .* \(6,\)"),
        (torch.ones(2, 6), r"buffer 'pos': .*shape \(2, 6\)"),
    ],
)
def test_bad_buffer_initialisers_raise_before_allocation(init: object, message: str) -> None:
    m = _meta_table()
    with pytest.raises(MaterializeError, match=message):
        initlab.materialize(m, "kaiming", buffers={"pos": init})  # type: ignore[dict-item]
    assert _all_meta(m)


def test_failing_buffer_callable_is_named_and_leaves_model_on_meta() -> None:
    def bad(t: torch.Tensor) -> None:
        raise KeyError("oops")

    m = _meta_table()
    with pytest.raises(MaterializeError, match=r"buffer 'pos': its initialiser .*oops") as ei:
        initlab.materialize(m, "kaiming", buffers={"pos": bad})
    assert isinstance(ei.value.__cause__, KeyError)
    assert _all_meta(m)
    initlab.materialize(m, "kaiming", buffers={"pos": torch.tensor(2.0)})  # broadcasts
    assert torch.equal(m.pos, torch.full((6,), 2.0))


# -- 6. torch_default zeroes MultiheadAttention's out_proj.bias under initialize ---------------
