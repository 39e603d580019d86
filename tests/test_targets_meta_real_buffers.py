"""meta_build keeps buffers real (accelerate's include_buffers=False): the module's own code
makes them, materialize keeps them and casts parameters only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from archs import ARCHS
from initlab.execute import MaterializeError


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("arch", list(ARCHS))
def test_meta_build_default_materializes_like_eager(arch: str) -> None:
    with initlab.meta_build():
        model = ARCHS[arch]()
    assert all(p.is_meta for p in model.parameters())
    assert not any(b.is_meta for b in model.buffers())
    initlab.materialize(model, "kaiming", seed=2)
    eager = ARCHS[arch]()
    initlab.initialize(eager, "kaiming", seed=2)
    _same_state(model, eager)


class Rotary(nn.Module):
    """A non-persistent buffer computed by the module (as Llama's inv_freq)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        inv = 1.0 / (10000 ** (torch.arange(0, 8, 2, dtype=torch.int64).float() / 8))
        self.register_buffer("inv_freq", inv, persistent=False)


def test_unknown_buffer_needs_no_input_and_keeps_float32_under_bf16() -> None:
    with initlab.meta_build():
        m = Rotary()
    initlab.materialize(m, "kaiming", seed=0, dtype=torch.bfloat16)
    assert m.fc.weight.dtype == torch.bfloat16
    assert m.inv_freq.dtype == torch.float32 and torch.equal(m.inv_freq, Rotary().inv_freq)


def test_buffers_on_meta_error_names_both_fixes() -> None:
    with initlab.meta_build(include_buffers=True):
        m = Rotary()
    with pytest.raises(MaterializeError) as ei:
        initlab.materialize(m, "kaiming")
    msg = str(ei.value)
    assert "inv_freq" in msg and "buffers={'inv_freq'" in msg and "--buffers FILE" in msg
    inv = Rotary().inv_freq
    initlab.materialize(m, "kaiming", buffers={"inv_freq": inv})  # the suggested fix works
    assert torch.equal(m.inv_freq, inv)


def test_unmatched_error_suggests_a_default_that_works() -> None:
    class Pos(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
            self.fc = nn.Linear(4, 4)

    policy = initlab.Policy(rules=(initlab.Rule("kaiming_normal", module="Linear"),))
    with initlab.meta_build():
        m = Pos()
    with pytest.raises(MaterializeError, match=r"default='normal:std=0.02'") as ei:
        initlab.materialize(m, policy)
    assert "param='pos_embed'" in str(ei.value)
    fixed = initlab.Policy(rules=policy.rules, unmatched="default", default="normal:std=0.02")
    initlab.materialize(m, fixed)
    assert m.pos_embed.std().item() == pytest.approx(0.02, rel=0.5)


transformers = pytest.importorskip("transformers", reason="HF models need transformers")


def _llama() -> nn.Module:
    cfg = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(cfg)


def test_llama_bf16_keeps_rope_float32_and_equal_to_eager() -> None:
    with initlab.meta_build():
        m = _llama()
    initlab.materialize(m, "normal:std=0.02", seed=0, dtype=torch.bfloat16)
    eager = _llama()
    names = [n for n, _ in m.named_buffers() if n.endswith("inv_freq")]
    assert names
    for name in names:
        got, ref = m.get_buffer(name), eager.get_buffer(name)
        assert got.dtype == torch.float32 == ref.dtype
        assert torch.equal(got, ref), name
    assert all(p.dtype == torch.bfloat16 for p in m.parameters())
    # the rope table at position 4000 equals the eager one exactly
    pos = torch.tensor([4000.0])
    assert torch.equal(torch.outer(pos, m.get_buffer(names[0])).cos(),
                       torch.outer(pos, eager.get_buffer(names[0])).cos())  # fmt: skip


def test_bert_position_ids_come_from_the_module() -> None:
    cfg = transformers.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=40,
    )  # fmt: skip
    with initlab.meta_build():
        m = transformers.BertModel(cfg)
    initlab.materialize(m, "normal:std=0.02", seed=0)
    eager = transformers.BertModel(cfg)
    for name, buf in eager.named_buffers():
        assert torch.equal(m.get_buffer(name), buf), name
    assert not any(t.is_meta for t in [*m.parameters(), *m.buffers()])
