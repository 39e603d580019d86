"""The transformers family presets read the model: config fields, counted layers, errors."""

from __future__ import annotations

import math

import pytest
from torch import nn

import initlab
from initlab import PolicyError, get_preset
from initlab.policy.families import model_quantities

transformers = pytest.importorskip(
    "transformers", reason="the HF family presets need transformers (pip install 'initlab[hf]')"
)

GPT2 = (
    "hf:gpt2?n_layer=3&n_embd=32&n_head=2&vocab_size=64&n_positions=16"
    "&bos_token_id=0&eos_token_id=0"
)


def stds(policy: initlab.Policy) -> dict[str, float]:
    return {r.id: r.scheme.std for r in policy.rules if r.scheme.name == "normal"}


def test_gpt2_reads_n_layer_and_initializer_range_from_the_config():
    model = initlab.build_model(GPT2 + "&initializer_range=0.05")
    s = stds(initlab.plan(model, "gpt2").policy)
    assert s["linear-weight"] == 0.05
    assert s["residual-proj[0]"] == pytest.approx(0.05 / math.sqrt(2 * 3), rel=1e-15)
    assert get_preset("gpt2", model=model, n_layers=12) == get_preset("gpt2", n_layers=12, std=0.05)


def test_gpt2_counts_layers_of_a_model_without_config():
    model = nn.Sequential(nn.ModuleList([nn.Linear(4, 4) for _ in range(5)]))
    assert model_quantities(model) == {"n_layer": 5, "n_params": 5 * (16 + 4)}
    assert get_preset("gpt2", model=model) == get_preset("gpt2", n_layers=5)
    with pytest.raises(PolicyError, match="n_layers=12"):
        get_preset("gpt2", model=nn.Linear(2, 2))  # nothing to count


def test_model_quantities_of_a_transformers_config():
    model = initlab.build_model(GPT2)
    q = model_quantities(model)
    assert q["n_layer"] == 3 and q["n_embd"] == 32 and q["initializer_range"] == 0.02
    assert q["width"] == 32 and q["n_params"] == sum(p.numel() for p in model.parameters())
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in q.values())


def test_t5_reads_its_sizes_or_says_what_it_needs():
    model = initlab.build_model("hf:t5?num_layers=1&d_model=32&d_kv=8&d_ff=48&num_heads=2")
    s = stds(initlab.plan(model, "t5").policy)
    assert s["q-weight"] == pytest.approx((32 * 8) ** -0.5)
    assert s["o-weight"] == pytest.approx((2 * 8) ** -0.5)
    assert s["wo-weight"] == pytest.approx(48**-0.5)
    with pytest.raises(PolicyError, match="t5 preset needs d_model") as e:
        get_preset("t5")
    assert e.value.path == "d_model"


def test_hf_auto_errors_name_the_fix():
    with pytest.raises(PolicyError, match="use it with a model"):
        get_preset("hf_auto")
    with pytest.raises(PolicyError, match="name the family preset instead"):
        initlab.plan(nn.Linear(2, 2), "hf-auto")
    gemma = initlab.build_model(
        "hf:gemma?num_hidden_layers=1&hidden_size=32&intermediate_size=48&num_attention_heads=2"
        "&num_key_value_heads=1&head_dim=16&vocab_size=64"
    )
    with pytest.raises(PolicyError, match="no family preset for model_type 'gemma'"):
        initlab.plan(gemma, "hf-auto")


def test_gemma_norm_is_zero_centred():
    gemma = initlab.build_model(
        "hf:gemma?num_hidden_layers=1&hidden_size=32&intermediate_size=48&num_attention_heads=2"
        "&num_key_value_heads=1&head_dim=16&vocab_size=64"
    )
    f = initlab.compute_fans(gemma, "model.norm.weight")
    assert (f.role, f.attr("torch_init")) == ("norm_scale", "zeros")
    initlab.initialize(gemma, "torch-default", seed=0)
    assert (gemma.model.norm.weight == 0).all()  # x·(1 + w): 0 is the neutral value
