"""torch_default on MultiheadAttention: out_proj bias zeroed, equal to a fresh module with torch's
RNG.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab


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


def test_torch_default_zeroes_mha_out_proj_bias_in_initialize() -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    with torch.no_grad():
        layer.self_attn.out_proj.bias.fill_(5.0)
    report = initlab.initialize(layer, "torch_default")
    assert torch.equal(layer.self_attn.out_proj.bias, torch.zeros(8))
    assert report["self_attn.out_proj.bias"].target_std == 0.0
    assert report["self_attn.out_proj.weight"].target_std > 0  # the Linear's draw


@pytest.mark.parametrize("kw", [{}, {"add_bias_kv": True}, {"kdim": 4, "vdim": 6}], ids=str)
def test_fresh_mha_equals_torch_default_with_torch_rng(kw: dict) -> None:  # type: ignore[type-arg]
    seed = 11
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(8, 2, **kw)
    m = nn.MultiheadAttention(8, 2, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(3.0)
    # the constructor first builds out_proj (a Linear draws weight, then bias), then
    # _reset_parameters draws the projections and bias_k/v: replay the same RNG positions
    torch.manual_seed(seed)
    nn.Linear(8, 8)
    initlab.initialize(m, "torch_default", rng="torch", exclude=["out_proj.*"])
    torch.manual_seed(seed)
    own = [n for n, _ in m.named_parameters() if not n.startswith("out_proj.")]
    initlab.initialize(m, "torch_default", rng="torch", exclude=own)
    _assert_same_state(_state(m), _state(ref))
    assert not m.out_proj.bias.any()


# -- 7. regenerate: int indices drop their dimension on both paths --------------------------------
