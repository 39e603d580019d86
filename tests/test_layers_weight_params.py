"""``initlab.layers.weight_params``: the weight-bearing layers of a model, as the registry sees
them (Conv1D, packed q/k/v, a parent describing its child's parameter, ties, unknown layers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.layers import LayerSpec, ParamSpec, unknown_params, unregister_layer, weight_params
from initlab.layers.spec import LINEAR
from zoo_hf import ZOO

transformers = pytest.importorskip("transformers", reason="the GPT-2 cases need transformers")


def gpt2() -> nn.Module:
    return initlab.build_model(ZOO["gpt2"][0])


def test_gpt2_weights_are_the_eight_conv1d_and_the_tied_readout():
    ws = weight_params(gpt2())
    conv = [w for w in ws if w.kind == "Conv1D"]
    assert len(conv) == 8 and all(w.tied_to is None for w in conv)
    attn = [w for w in conv if w.module_name.endswith("c_attn")]
    # Conv1D [in, out] = [64, 192]: per block 64/64 with q/k/v along dim 1
    assert [(w.fans.fan_in, w.fans.fan_out, [(b.name, b.dim) for b in w.blocks]) for w in attn] == [
        (64, 64, [("q", 1), ("k", 1), ("v", 1)])
    ] * 2
    fc = next(w for w in conv if w.module_name == "transformer.h.0.mlp.c_fc")
    assert (fc.fans.fan_in, fc.fans.fan_out, tuple(fc.tensor.shape)) == (64, 256, (64, 256))
    readout = [w for w in ws if w.kind == "Linear"]
    assert [(w.qualname, w.tied_to) for w in readout] == [
        ("lm_head.weight", "transformer.wte.weight")
    ]
    # embeddings are not "weight"; asked for, the table comes first and owns the tie
    emb = weight_params(gpt2(), roles=("embedding",))
    assert [(w.qualname, w.tied_to) for w in emb] == [
        ("transformer.wte.weight", None), ("transformer.wpe.weight", None)
    ]  # fmt: skip
    assert unknown_params(gpt2()) == []


def test_mha_packed_in_proj_and_its_out_proj():
    ws = weight_params(nn.Sequential(nn.MultiheadAttention(16, 4)), roles=("weight", "bias"))
    got = [(w.qualname, w.role, [b.name for b in w.blocks]) for w in ws]
    assert got == [
        ("0.in_proj_weight", "weight", ["q", "k", "v"]),
        ("0.in_proj_bias", "bias", ["q", "k", "v"]),
        ("0.out_proj.weight", "weight", []),
        ("0.out_proj.bias", "bias", []),
    ]


class Attention(nn.Module):
    """timm's layout without timm: a fused ``qkv`` Linear the parent describes."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return q + k + v


@pytest.fixture
def registered_attention():
    spec = LayerSpec(
        "test-attention",
        {"qkv.weight": ParamSpec("weight", LINEAR, blocks=("q", "k", "v"))},
        children={"qkv": {}},
    )
    initlab.register_layer(Attention, spec)
    yield Attention
    unregister_layer(Attention)


def test_a_parent_describing_its_childs_weight_is_heard(registered_attention):
    (w,) = weight_params(nn.Sequential(registered_attention()))
    assert w.qualname == "0.qkv.weight" and w.kind == "Linear"
    assert (w.fans.fan_in, w.fans.fan_out, [b.name for b in w.blocks]) == (8, 8, ["q", "k", "v"])


class Kernel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.ones(3, 4))
        self.scale = nn.Parameter(torch.ones(4))


def test_unknown_layers_are_listed_not_guessed():
    model = nn.Sequential(Kernel(), nn.Linear(4, 4))
    assert [w.qualname for w in weight_params(model)] == ["1.weight"]
    assert unknown_params(model) == [("0.kernel", "Kernel")]  # 1-D scale: no shape rule at all


def test_a_module_reachable_twice_is_listed_once_and_shared_weights_are_ties():
    shared = nn.Linear(4, 4)
    other = nn.Linear(4, 4)
    other.weight = shared.weight
    model = nn.Sequential(shared, nn.ReLU(), shared, other)
    assert [(w.qualname, w.tied_to) for w in weight_params(model)] == [
        ("0.weight", None), ("3.weight", "0.weight")
    ]  # fmt: skip


def test_roles_are_checked():
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    assert [w.qualname for w in weight_params(model, roles="norm_scale")] == ["1.weight"]
    with pytest.raises(
        ValueError, match=r"unknown role\(s\) wieght; the registry.s roles are weight"
    ):
        weight_params(model, roles=("wieght",))
