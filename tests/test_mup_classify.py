"""muP's classification table (Tensor Programs V, Table 3) on hand-made and zoo models, the
readout hook, tied embeddings, attention scales, the base forms and the errors."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import initlab
from initlab.mup import MupError

# kind, width_mult, Adam LR mult, SGD LR mult; with base width 64 and width 256 (x4)
IN, VEC, HID, OUT = (
    ("input", 4, 1, 4),
    ("vector", 4, 1, 4),
    ("hidden", 4, 0.25, 1),
    ("output", 4, 1, 4),
)
FIN = ("vector", 1, 1, 1)  # a bias whose size does not grow (the readout's)


def _mlp(w: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, w), nn.ReLU(), nn.Linear(w, 2 * w), nn.LayerNorm(2 * w), nn.ReLU(),
        nn.Linear(2 * w, w), nn.ReLU(), nn.Linear(w, 3),
    )  # fmt: skip


MLP_TABLE = {
    "0.weight": IN, "0.bias": VEC, "2.weight": HID, "2.bias": VEC, "3.weight": VEC,
    "3.bias": VEC, "5.weight": HID, "5.bias": VEC, "7.weight": OUT,
    "7.bias": FIN,
}  # fmt: skip


class TinyGPT(nn.Module):
    """A hand-made transformer: packed qkv MultiheadAttention, tied embedding/head."""

    def __init__(self, d: int, vocab: int = 50, ctx: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.ln = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return self.head(self.ln(x + self.ff(x)))


GPT_TABLE = {
    "tok.weight": IN, "pos": IN, "attn.in_proj_weight": HID, "attn.in_proj_bias": VEC,
    "attn.out_proj.weight": HID, "attn.out_proj.bias": VEC, "ln.weight": VEC, "ln.bias": VEC,
    "ff.0.weight": HID, "ff.0.bias": VEC, "ff.2.weight": HID, "ff.2.bias": VEC,
}  # fmt: skip


def _check(m: initlab.Mup, table: dict[str, tuple]) -> None:
    got = {n: (p.kind, p.width_mult, p.lr_mult_adam, p.lr_mult_sgd) for n, p in m.params.items()}
    assert got == table


def test_mlp_table():
    m = initlab.mup(_mlp(256), _mlp(64))
    _check(m, MLP_TABLE)
    assert m.readouts == {"7": 0.25}
    assert m.full and m.notes == ()
    assert m.params["2.weight"].infinite_dims == (0, 1)
    assert m.params["7.weight"].infinite_dims == (1,)


def test_tied_embedding_is_input_like_with_the_multiplier_at_the_head():
    """mup's MuSharedReadout choice: the shared weight is input-like (init, LR), and the head's
    input is multiplied by 1/width_mult."""
    with initlab.meta_build():
        base = TinyGPT(64)
    model = TinyGPT(256)
    m = initlab.mup(model, base)
    _check(m, GPT_TABLE)
    tok = m.params["tok.weight"]
    assert tok.aliases == ("head.weight",) and tok.readouts == ("head",)
    assert m.readouts == {"head": 0.25}
    assert tok.init_std == 1.0  # nn.Embedding's N(0, 1), the base's: not divided by width
    # nn.MultiheadAttention has no settable logit scale: reported, and the Mup says it is not full
    assert [a.settable for a in m.attention] == [False]
    assert not m.full and any("MultiheadAttention" in n for n in m.notes)
    # the readout="init" form cannot put a shared weight's multiplier into the init
    assert initlab.mup(model, base, readout="init").readouts == {"head": 0.25}


def test_readout_init_form_is_table_3_as_printed():
    m = initlab.mup(_mlp(256), _mlp(64), readout="init")
    out = m.params["7.weight"]
    assert (out.lr_mult_adam, out.lr_mult_sgd) == (0.25, 0.25)
    assert out.init_std == pytest.approx(m.params["7.weight"].base_std / 4, rel=1e-12)
    assert m.readouts == {}


def test_readout_hook_scales_the_logits_and_is_removed():
    torch.manual_seed(0)
    model = _mlp(256)
    m = initlab.mup(model, _mlp(64))
    x = torch.randn(8, 10)
    plain = model(x)
    handle = m.attach(model)
    assert "7: input x 0.25" in repr(handle)
    assert torch.equal(model(x), model[:7](x) @ model[7].weight.T * 0.25 + model[7].bias)
    with pytest.raises(MupError, match="already attached"):
        m.attach(model)
    handle.remove()
    assert torch.equal(model(x), plain)
    assert all(not mod._forward_pre_hooks for mod in model.modules())


def _hf(name: str, **cfg: int) -> nn.Module:
    spec = {
        "gpt2": "hf:gpt2?n_layer=2&n_head=4&vocab_size=128&n_positions=32&bos_token_id=0"
        "&eos_token_id=0",
        "llama": "hf:llama?num_hidden_layers=2&num_attention_heads=4&num_key_value_heads=2"
        "&vocab_size=128&max_position_embeddings=32",
    }[name]
    extra = "".join(f"&{k}={v}" for k, v in cfg.items())
    with initlab.meta_build():
        return initlab.build_model(spec + extra)


def _zoo_check(m: initlab.Mup, table: dict[str, tuple]) -> None:
    for name, p in m.params.items():
        hits = [v for pattern, v in table.items() if re.fullmatch(pattern, name)]
        assert len(hits) == 1, name
        assert (p.kind, p.width_mult, p.lr_mult_adam, p.lr_mult_sgd) == hits[0], name


GPT2_ZOO = {
    r"transformer\.(wte|wpe)\.weight": IN,
    r".*\.(ln_\d|ln_f)\.(weight|bias)": VEC,
    r".*\.(c_attn|c_proj|c_fc)\.weight": HID,
    r".*\.(c_attn|c_proj|c_fc)\.bias": VEC,
}
LLAMA_ZOO = {
    r"model\.embed_tokens\.weight": IN,
    r".*(input_layernorm|post_attention_layernorm)\.weight|model\.norm\.weight": VEC,
    r".*self_attn\.(q|k|v|o)_proj\.weight|.*mlp\.(gate|up|down)_proj\.weight": HID,
    r"lm_head\.weight": OUT,
}


def test_gpt2_from_config_table_base_forms_and_attention():
    model = _hf("gpt2", n_embd=256)
    base = _hf("gpt2", n_embd=64)
    m = initlab.mup(model, base)
    _zoo_check(m, GPT2_ZOO)
    assert m.init == "hf_auto" and m.full
    assert m.readouts == {"lm_head": 0.25}  # tied to wte
    assert m.params["transformer.wte.weight"].init_std == 0.02
    assert m.params["transformer.h.0.attn.c_attn.weight"].init_std == pytest.approx(0.01)
    # residual projections: the gpt2 preset's 0.02/sqrt(2·n_layer), then / sqrt(width_mult)
    assert m.params["transformer.h.1.mlp.c_proj.weight"].init_std == pytest.approx(0.005)
    # head_dim 16 -> 64: scaling 1/sqrt(16) · sqrt(16)/64... = sqrt(d_base)/d
    assert [(a.settable, a.factor) for a in m.attention] == [(True, 0.5), (True, 0.5)]
    # the same Mup from the base config and from a {dim: size} map
    assert initlab.mup(model, base.config) == m
    assert initlab.mup(model, {"n_embd": 64}) == m
    assert initlab.mup(model, {"width": 64}) == m
    assert initlab.Mup.from_json(m.to_json()) == m


def test_llama_from_config_table():
    model = _hf("llama", hidden_size=256, intermediate_size=512)
    m = initlab.mup(model, {"width": 64})  # intermediate_size scales with it: 128
    _zoo_check(m, LLAMA_ZOO)
    assert m.readouts == {"lm_head": 0.25}
    assert m.init == "hf_auto" and m.full
    assert all(a.settable and a.factor == 0.5 for a in m.attention)


def test_gpt2_readout_and_attention_scale_numerically():
    """On a tiny GPT-2: the attached model's attention probabilities equal a hand computation
    with logits q·k · sqrt(d_base)/d, its logits are the readout's input x 1/width_mult, and
    remove() restores the model bit for bit."""
    spec = ("hf:gpt2?n_layer=1&n_head=2&vocab_size=16&n_positions=8&bos_token_id=0"
            "&eos_token_id=0&n_embd={}")  # fmt: skip
    torch.manual_seed(0)
    model = initlab.build_model(spec.format(64))
    model.set_attn_implementation("eager")
    model.eval()
    with initlab.meta_build():
        base = initlab.build_model(spec.format(16))
    m = initlab.mup(model, base)
    idx = torch.randint(0, 16, (1, 6))
    before = model(idx).logits
    attn = model.transformer.h[0].attn
    original = attn.scaling
    assert original == 32**-0.5
    handle = m.attach(model)
    out = model(idx, output_attentions=True, output_hidden_states=True)
    assert attn.scaling == pytest.approx(math.sqrt(8) / 32, rel=1e-15)  # head_dim 8 -> 32
    h = model.transformer.h[0].ln_1(model.transformer.wte(idx) + model.transformer.wpe.weight[:6])
    q, k, _ = attn.c_attn(h).split(64, dim=-1)
    q, k = (t.view(1, 6, 2, 32).transpose(1, 2) for t in (q, k))
    logits = q @ k.transpose(-1, -2) * (math.sqrt(8) / 32)
    logits = logits.masked_fill(torch.ones(6, 6).triu(1).bool(), float("-inf"))
    torch.testing.assert_close(out.attentions[0], torch.softmax(logits, -1), rtol=1e-5, atol=1e-6)
    final = out.hidden_states[-1]  # after ln_f
    assert torch.equal(out.logits, torch.nn.functional.linear(final * 0.25, model.lm_head.weight))
    handle.remove()
    assert attn.scaling == original
    assert torch.equal(model(idx).logits, before)
    plain = initlab.mup(model, base, attention="1/d")
    with plain.attach(model):
        assert attn.scaling == pytest.approx(1 / 32, rel=1e-15)


def test_policy_initialises_with_mup_rule_ids_and_stds():
    torch.manual_seed(0)
    model = _mlp(512)
    m = initlab.mup(model, _mlp(64))
    report = initlab.initialize(model, m.policy, seed=0)
    assert {r.qualname: r.rule_id for r in report.rows} == {
        n: f"mup-{p.kind}" for n, p in m.params.items()
    }
    w = model[2].weight.detach().double()
    se = w.std().item() / math.sqrt(2 * w.numel())
    assert abs(w.std().item() - m.params["2.weight"].init_std) < 3 * se
    assert m.params["2.weight"].init_std == pytest.approx(1 / math.sqrt(3 * 64) / math.sqrt(8))


def test_bad_input_is_a_clear_error():
    with pytest.raises(MupError, match="base model lacks parameter"):
        initlab.mup(_mlp(128), nn.Sequential(nn.Linear(10, 64)))
    with pytest.raises(MupError, match=r"needs a model with a \.config"):
        initlab.mup(_mlp(128), {"width": 64})
    with pytest.raises(MupError, match="unknown dim 'widht'"):
        initlab.mup(_hf("gpt2", n_embd=128), {"widht": 64})
    with pytest.raises(MupError, match="optimizer must be one of adam, sgd"):
        initlab.mup(_mlp(128), _mlp(64), optimizer="lion")
    with pytest.raises(MupError, match="readout must be one of"):
        initlab.mup(_mlp(128), _mlp(64), readout="hook")
    with pytest.raises(MupError, match="attention must be one of"):
        initlab.mup(_mlp(128), _mlp(64), attention="sqrt")
    m = initlab.mup(_mlp(128), _mlp(64))
    with pytest.raises(MupError, match="not in the model"):
        m.attach(nn.Sequential(nn.Linear(2, 2)))


def _net3(w: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(5, w), nn.Tanh(), nn.Linear(w, 2 * w), nn.Tanh(), nn.Linear(2 * w, 3)
    )


@settings(max_examples=25, deadline=None)
@given(
    base=st.integers(2, 40),
    target=st.integers(2, 40),
    delta=st.integers(2, 40),
)
def test_multipliers_follow_the_width_ratio(base, target, delta):
    """With a delta model (mup's set_base_shapes(delta=...)), the kinds do not depend on the
    widths, and every multiplier is the width ratio's power from Table 3; at the base width
    every multiplier is 1 and the policy is the base init itself (no Scaled rule)."""
    assume(delta != base)
    m = initlab.mup(_net3(target), _net3(base), delta=_net3(delta))
    kinds = [p.kind for p in m.params.values()]
    assert kinds == ["input", "vector", "hidden", "vector", "output", "vector"]
    r = target / base
    hid, out, inp = m.params["2.weight"], m.params["4.weight"], m.params["0.weight"]
    assert math.isclose(hid.lr_mult_adam, 1 / r, rel_tol=1e-15)
    assert math.isclose(hid.init_std, hid.base_std / math.sqrt(r), rel_tol=1e-12)
    assert (inp.lr_mult_adam, out.lr_mult_adam) == (1.0, 1.0)
    assert inp.lr_mult_sgd == out.lr_mult_sgd == m.params["0.bias"].lr_mult_sgd == r
    assert m.readouts == {"4": 1 / r}
    assert (out.init_std, inp.init_std) == (out.base_std, inp.base_std)
    if target == base:
        assert all(p.lr_mult_adam == p.lr_mult_sgd == 1.0 for p in m.params.values())
        assert not any(rule.scheme.name == "scaled" for rule in m.policy.rules)
