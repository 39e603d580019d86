"""``hf:`` model specs: built from the config class, fields parsed, one-line errors."""

from __future__ import annotations

import pytest

import initlab
from initlab import ModelError
from initlab.sources.hf import parse_hf_spec

transformers = pytest.importorskip(
    "transformers", reason="hf: model specs need transformers (pip install 'initlab[hf]')"
)


def test_parse_fields_as_int_float_bool_str():
    assert parse_hf_spec("gpt2?n_layer=2&resid_pdrop=0.5&scale_attn_weights=false&x=gelu") == (
        "gpt2",
        {"n_layer": 2, "resid_pdrop": 0.5, "scale_attn_weights": False, "x": "gelu"},
    )


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("hf:gpt2?n_layer=1&n_embd=32&n_head=2&bos_token_id=0&eos_token_id=0", "GPT2LMHeadModel"),
        ("hf:bert?num_hidden_layers=1&hidden_size=32&num_attention_heads=2", "BertModel"),
        ("hf:llama?num_hidden_layers=1&hidden_size=32&num_attention_heads=2", "LlamaForCausalLM"),
        (
            "hf:mistral?num_hidden_layers=1&hidden_size=32&num_attention_heads=2",
            "MistralForCausalLM",
        ),
        ("hf:qwen2?num_hidden_layers=1&hidden_size=32&num_attention_heads=2", "Qwen2ForCausalLM"),
        ("hf:t5?num_layers=1&d_model=32", "T5ForConditionalGeneration"),
        ("hf:vit?num_hidden_layers=1&hidden_size=32&num_attention_heads=2", "ViTModel"),
        (
            "hf:bert?num_hidden_layers=1&hidden_size=32&num_attention_heads=2&head=masked_lm",
            "BertForMaskedLM",
        ),
    ],
)
def test_builds_from_the_config(spec, cls):
    model = initlab.build_model(spec)
    assert type(model).__name__ == cls
    _, fields = parse_hf_spec(spec[3:])
    fields.pop("head", None)
    assert all(getattr(model.config, k) == v for k, v in fields.items())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:gtp2", "unknown model type 'gtp2' (did you mean 'gpt2'?); valid types: "),
        ("hf:gpt2?n_layers=2", "unknown config field(s) n_layers (did you mean 'n_layer'?)"),
        ("hf:gpt2?n_layer", "'n_layer' is not field=value"),
        ("hf:", "needs a model type"),
        ("hf:gpt2?head=vision", "unknown head 'vision'; use one of base, causal_lm"),
        ("hf:gpt2?n_embd=64&n_head=5", "must be divisible by num_heads"),
    ],
)
def test_errors_are_one_line_and_name_the_fix(spec, message):
    with pytest.raises(ModelError) as e:
        initlab.build_model(spec)
    assert message in str(e.value) and "\n" not in str(e.value)
