"""LSUV on every weight-bearing layer the registry knows: GPT-2's Conv1D (the issue 12 defect),
packed q/k/v rescaled block by block, a tied weight rescaled once, skips named in one line."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import initlab
from initlab.diagnostics import lsuv_
from initlab.layers import LayerSpec, ParamSpec, unregister_layer
from initlab.layers.spec import LINEAR
from zoo_hf import ZOO

transformers = pytest.importorskip("transformers", reason="the GPT-2 cases need transformers")
from transformers.pytorch_utils import Conv1D  # noqa: E402

TOL = 0.1  # lsuv_'s default: |Var - 1| < 0.1


def output_vars(model: nn.Module, inputs: dict, kinds: tuple[type, ...]) -> dict[str, list[float]]:
    """Each layer's output variance (per q/k/v block for a 3x-wide Conv1D), measured apart."""
    out: dict[str, list[float]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(m, _a, y):
        y = y.detach().double()
        parts = y.chunk(3, dim=-1) if isinstance(m, Conv1D) and m.nf == 3 * m.nx else (y,)
        out.setdefault(names[m], [float(p.var(correction=0)) for p in parts])

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(**inputs)
    for h in hs:
        h.remove()
    return out


def test_gpt2_every_conv1d_reaches_unit_variance_and_wte_keeps_its_std():
    model = initlab.build_model(ZOO["gpt2"][0]).eval()
    wte = model.transformer.wte.weight.detach().clone()
    ids = torch.randint(0, 128, (32, 16), generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning) as record:
        rep = lsuv_(model, {"input_ids": ids}, generator=0)
    # before: lsuv_ saw only lm_head (a Linear), rescaled the tied wte from std 0.020 to 0.125
    assert torch.equal(model.transformer.wte.weight, wte)
    assert model.lm_head.weight is model.transformer.wte.weight
    labels = [x.label for x in rep.layers]
    assert len(labels) == 12 and labels[:5] == [
        "transformer.h.0.attn.c_attn[q]", "transformer.h.0.attn.c_attn[k]",
        "transformer.h.0.attn.c_attn[v]", "transformer.h.0.attn.c_proj",
        "transformer.h.0.mlp.c_fc",
    ]  # fmt: skip
    assert rep.all_converged and all(abs(x.final_var - 1) < TOL for x in rep.layers)
    measured = output_vars(model, {"input_ids": ids}, (Conv1D,))
    assert len(measured) == 8
    for name, vs in measured.items():
        assert all(abs(v - 1) < TOL for v in vs), (name, vs)
    assert [(s.name, s.kind) for s in rep.skipped] == [("lm_head", "Linear")]
    assert "tied to transformer.wte.weight" in rep.skipped[0].reason
    lines = [str(w.message) for w in record if "lsuv_" in str(w.message)]
    assert len(lines) == 1 and "\n" not in lines[0] and lines[0] == rep.note


def test_packed_qkv_blocks_are_rescaled_each_on_its_own_output_slice():
    torch.manual_seed(0)
    layer = Conv1D(96, 32)  # weight [32, 96]: q, k, v along dim 1
    with torch.no_grad():  # one matrix, three scales: the blocks' outputs differ by 10x in std
        base = layer.weight[:, :32].clone()
        for block, s in zip(layer.weight.split(32, dim=1), (0.1, 1.0, 10.0), strict=True):
            block.copy_(base * s)
    model = nn.Sequential(layer)
    x = torch.randn(512, 32, generator=torch.Generator().manual_seed(1))
    rep = lsuv_(model, x, orthonormal_preinit=False)
    assert [x.block for x in rep.layers] == ["q", "k", "v"] and rep.all_converged
    with torch.no_grad():
        y = model(x).double()
    vs = [float(p.var(correction=0)) for p in y.split(32, dim=-1)]
    # the bias is 0 and the input fixed: one rescaling per block hits 1 (float32 rounding)
    assert all(abs(v - 1) < 1e-4 for v in vs), vs
    # the factors undo the blocks' scales: the whole-tensor factor would leave 1e-4 and 1e2
    q, k, v = (x.scale for x in rep.layers)
    assert q / k == pytest.approx(10, rel=1e-3) and k / v == pytest.approx(10, rel=1e-3)


class Attention(nn.Module):
    """timm's layout without timm: a fused ``qkv`` Linear the parent describes."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return q * k.sigmoid() + v


def test_a_child_qkv_described_by_its_parent_is_split_too():
    spec = LayerSpec(
        "test-attention",
        {"qkv.weight": ParamSpec("weight", LINEAR, blocks=("q", "k", "v"))},
        children={"qkv": {}},
    )
    initlab.register_layer(Attention, spec)
    try:
        model = nn.Sequential(Attention(), nn.Linear(16, 16))
        x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
        rep = lsuv_(model, x, generator=0)
    finally:
        unregister_layer(Attention)
    assert [x.label for x in rep.layers] == ["0.qkv[q]", "0.qkv[k]", "0.qkv[v]", "1"]
    assert rep.all_converged and rep.skipped == []


def test_a_tied_weight_is_rescaled_once_by_its_first_owner():
    a, b = nn.Linear(16, 16), nn.Linear(16, 16)
    b.weight = a.weight
    model = nn.Sequential(a, nn.Tanh(), b)
    x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="tied to 0.weight"):
        rep = lsuv_(model, x, generator=0)
    assert [x.name for x in rep.layers] == ["0"] and [s.name for s in rep.skipped] == ["2"]
    with torch.no_grad():
        assert abs(float(a(x).double().var(correction=0)) - 1) < TOL


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class Kernel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.eye(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.kernel


def test_skipped_layer_kinds_are_named_in_one_warning_and_left_alone(snapshot, assert_unchanged):
    model = nn.Sequential(Kernel(), SelfAttention(), nn.Linear(16, 16), nn.LSTM(16, 8))
    x = torch.randn(8, 4, 16, generator=torch.Generator().manual_seed(0))
    kept = {n: model[i] for n, i in (("kernel", 0), ("mha", 1), ("lstm", 3))}
    before = {n: snapshot(m) for n, m in kept.items()}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        rep = lsuv_(model, x, generator=0)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    note = str(record[0].message)
    assert note.startswith("lsuv_ left 3 layer(s) as they were: ")
    for text in ("Kernel x1 (0)", "register_layer", "MultiheadAttention x1 (1.mha)",
                 "not in its output", "LSTM x1 (3)", "2 weights"):  # fmt: skip
        assert text in note, note
    assert [x.name for x in rep.layers] == ["2"] and rep.not_executed == ["1.mha.out_proj"]
    for n, m in kept.items():
        if n != "mha":
            assert_unchanged(m, before[n])
    assert torch.equal(model[1].mha.in_proj_weight, before["mha"]["mha.in_proj_weight"])
    assert rep.to_dict()["skipped"][0] == {
        "name": "0",
        "kind": "Kernel",
        "reason": rep.skipped[0].reason,
    }


class Packed(nn.Module):
    """A Linear packing ``n`` blocks along its output, registered with block names."""

    def __init__(self, dim: int, n: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, n * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 12),
    scales=st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=4),
    tokens=st.booleans(),
)
def test_every_block_reaches_unit_variance_whatever_its_scale(dim, scales, tokens):
    n = len(scales)
    names = tuple(f"b{i}" for i in range(n))
    spec = LayerSpec("test-packed", {"proj.weight": ParamSpec("weight", LINEAR, blocks=names)},
                     children={"proj": {}})  # fmt: skip
    initlab.register_layer(Packed, spec)
    try:
        model = Packed(dim, n)
        with torch.no_grad():
            for block, s in zip(model.proj.weight.split(dim, dim=0), scales, strict=True):
                block.mul_(s)
        shape = (64, 5, dim) if tokens else (256, dim)  # a sequence of tokens, or vectors
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        rep = lsuv_(model, x, orthonormal_preinit=False, tol=1e-3, max_iter=5)
    finally:
        unregister_layer(Packed)
    assert [x.block for x in rep.layers] == list(names) and rep.skipped == []
    with torch.no_grad():
        y = model(x).double()
    for part in y.split(dim, dim=-1):
        assert abs(float(part.var(correction=0)) - 1) < 1e-3
