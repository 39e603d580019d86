"""torch_default on any model: registered layers get their default, the rest a listed skip."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import initlab


class Pos(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.full((1, 5, 4), 7.0))
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)


def test_unknown_layers_are_a_listed_skip_not_an_error() -> None:
    m = Pos()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = initlab.initialize(m, "torch_default", seed=0)
    skips = [w for w in caught if "torch_default skipped" in str(w.message)]
    assert len(skips) == 1 and "pos_embed" in str(skips[0].message)
    assert any("torch_default skipped 1 parameter(s)" in n for n in report.notes)
    assert "Note: torch_default skipped" in report.to_markdown()
    assert report.unmatched == ["pos_embed"]
    assert torch.equal(m.pos_embed, torch.full((1, 5, 4), 7.0))  # left as it was
    assert torch.equal(m.norm.weight, torch.ones(4))
    assert report["fc.weight"].status == "initialized"


def test_strict_still_refuses_the_skipped_ones() -> None:
    with pytest.raises(initlab.UnmatchedParametersError, match="pos_embed"):
        initlab.initialize(Pos(), "torch_default", seed=0, strict=True)


transformers = pytest.importorskip("transformers", reason="HF models need transformers")


def test_torch_default_runs_on_gpt2_and_llama() -> None:
    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    )
    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4)
    )  # fmt: skip
    for model in (gpt2, llama):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = initlab.initialize(model, "torch_default", seed=0)
        norms = [r for r in report.rows if r.fans is not None and r.fans.role == "norm_scale"]
        assert norms and all(r.status == "initialized" for r in norms)
    conv1d = gpt2.transformer.h[0].mlp.c_fc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = initlab.plan(gpt2, "torch_default").notes
    # before layers/hf.py registers Conv1D (with its default) it is a listed skip
    registered = initlab.layers.compute_fans(conv1d, "weight").attr("torch_init") is not None
    assert registered or any("(Conv1D)" in n for n in notes)
