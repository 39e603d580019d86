"""Opt-in depth scaling: Depth-muP (1/sqrt(L)) and CompleteP (1/L) residual branch multipliers
and their Adam LR rule, against a shallower base."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.mup import MupError

SPEC = "hf:gpt2?n_head=2&vocab_size=32&n_positions=16&bos_token_id=0&eos_token_id=0"


def _gpt2(layers: int, width: int) -> nn.Module:
    with initlab.meta_build():
        return initlab.build_model(f"{SPEC}&n_layer={layers}&n_embd={width}")


@pytest.mark.parametrize(("rule", "branch", "lr"), [("sqrt", 0.5, 0.5), ("complete", 0.25, 1.0)])
def test_gpt2_branches_and_lr(rule, branch, lr):
    model, base = _gpt2(8, 64), _gpt2(2, 32)
    m = initlab.mup(model, base, depth=rule)
    d = m.depth
    assert (d.depth, d.base_depth, d.blocks) == (8, 2, "transformer.h")
    assert d.branch_mult == branch and d.lr_mult_adam == lr
    assert d.branches == tuple(
        f"transformer.h.{i}.{b}" for i in range(8) for b in ("attn.c_proj", "mlp.c_proj")
    )
    for name, p in m.params.items():
        width_only = {"hidden": 0.5}.get(p.kind, 1.0)  # width x2
        in_blocks = name.startswith("transformer.h.")
        want = width_only * (lr if in_blocks else 1.0)
        assert p.lr_mult_adam == want, name
        assert p.lr_mult_sgd == (2.0 if p.kind in ("input", "vector") else 1.0), name
    # the blocks beyond the base's depth are compared with its block 0: the same table
    assert m.params["transformer.h.7.mlp.c_fc.weight"].kind == "hidden"
    assert m.full and initlab.Mup.from_json(m.to_json()) == m
    without = initlab.mup(model, base)
    assert without.depth is None and any("more blocks than the base" in n for n in without.notes)


class Block(nn.Module):
    def __init__(self, w: int) -> None:
        super().__init__()
        self.fc = nn.Linear(w, w)
        self.out = nn.Linear(w, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(torch.relu(self.fc(x)))


class Deep(nn.Module):
    def __init__(self, layers: int, w: int = 16) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(w) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def test_branch_hook_multiplies_each_branch_and_is_removed():
    torch.manual_seed(0)
    model = Deep(4)
    m = initlab.mup(model, Deep(1), depth="sqrt", depth_branches=("out",))
    assert m.depth.branch_mult == 0.5
    x = torch.randn(3, 16)
    plain = model(x)
    with m.attach(model) as handle:
        assert len(handle.branches) == 4
        y = x
        for b in model.blocks:
            y = y + 0.5 * nn.functional.linear(torch.relu(b.fc(y)), b.out.weight, b.out.bias)
        torch.testing.assert_close(model(x), y, rtol=0, atol=1e-6)
    assert torch.equal(model(x), plain)


def test_depth_errors():
    with pytest.raises(MupError, match="no residual branch layer"):
        initlab.mup(Deep(4), Deep(1), depth="sqrt")
    with pytest.raises(MupError, match=r"nn\.ModuleList of one class"):
        initlab.mup(nn.Linear(8, 8), nn.Linear(4, 4), depth="complete")
    with pytest.raises(MupError, match="depth must be None, 'sqrt'"):
        initlab.mup(Deep(4), Deep(1), depth="linear")
