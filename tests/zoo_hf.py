"""The Hugging Face part of the reference zoo: small transformers models (2 layers, width 64)
built from their config classes, never downloaded, with a hand-written table of fans.

``ZOO[name]`` is ``(hf: spec, the auto class that loads its checkpoint)``; ``FANS[name]`` maps a
parameter-name regex to ``(fan_in, fan_out, blocks)``: every parameter must match one entry.
"""

from __future__ import annotations

import re

D, FF, V, HEADS = 64, 128, 128, 4  # width, feed-forward width, vocabulary, heads

ZOO: dict[str, tuple[str, str]] = {
    "gpt2": (
        f"hf:gpt2?n_layer=2&n_embd={D}&n_head={HEADS}&vocab_size={V}&n_positions=32"
        "&bos_token_id=0&eos_token_id=0",
        "AutoModelForCausalLM",
    ),
    "bert": (
        f"hf:bert?num_hidden_layers=2&hidden_size={D}&num_attention_heads={HEADS}"
        f"&intermediate_size={FF}&vocab_size={V}&max_position_embeddings=32",
        "AutoModel",
    ),
    "llama": (
        f"hf:llama?num_hidden_layers=2&hidden_size={D}&num_attention_heads={HEADS}"
        f"&num_key_value_heads=2&intermediate_size={FF}&vocab_size={V}"
        "&max_position_embeddings=32",
        "AutoModelForCausalLM",
    ),
    "qwen2": (
        f"hf:qwen2?num_hidden_layers=2&hidden_size={D}&num_attention_heads={HEADS}"
        f"&num_key_value_heads=2&intermediate_size={FF}&vocab_size={V}"
        "&max_position_embeddings=32",
        "AutoModelForCausalLM",
    ),
    "t5": (
        f"hf:t5?num_layers=2&num_decoder_layers=2&d_model={D}&d_kv=16&d_ff={FF}"
        f"&num_heads={HEADS}&vocab_size={V}",
        "AutoModelForSeq2SeqLM",
    ),
    "vit": (
        f"hf:vit?num_hidden_layers=2&hidden_size={D}&num_attention_heads={HEADS}"
        f"&intermediate_size={FF}&image_size=32&patch_size=8",
        "AutoModel",
    ),
    "deit": (
        f"hf:deit?num_hidden_layers=2&hidden_size={D}&num_attention_heads={HEADS}"
        f"&intermediate_size={FF}&image_size=32&patch_size=8",
        "AutoModel",
    ),
}

_NORM = (1, 1, ())
_QKV = ("q", "k", "v")
FANS: dict[str, dict[str, tuple[int, int, tuple[str, ...]]]] = {
    "gpt2": {
        r"transformer\.wte\.weight": (V, D, ()),
        r"transformer\.wpe\.weight": (32, D, ()),
        r".*ln_\d\.(weight|bias)|transformer\.ln_f\.(weight|bias)": _NORM,
        r".*attn\.c_attn\.(weight|bias)": (D, D, _QKV),  # whole weight 64/192, per block 64/64
        r".*attn\.c_proj\.(weight|bias)": (D, D, ()),
        r".*mlp\.c_fc\.(weight|bias)": (D, 4 * D, ()),
        r".*mlp\.c_proj\.(weight|bias)": (4 * D, D, ()),
    },
    "bert": {
        r"embeddings\.word_embeddings\.weight": (V, D, ()),
        r"embeddings\.position_embeddings\.weight": (32, D, ()),
        r"embeddings\.token_type_embeddings\.weight": (2, D, ()),
        r".*LayerNorm\.(weight|bias)": _NORM,
        r".*attention\.self\.(query|key|value)\.(weight|bias)": (D, D, ()),
        r".*attention\.output\.dense\.(weight|bias)|pooler\.dense\.(weight|bias)": (D, D, ()),
        r".*intermediate\.dense\.(weight|bias)": (D, FF, ()),
        r"encoder\.layer\.\d\.output\.dense\.(weight|bias)": (FF, D, ()),
    },
    "llama": {
        r"model\.embed_tokens\.weight": (V, D, ()),
        r".*(input_layernorm|post_attention_layernorm)\.weight|model\.norm\.weight": _NORM,
        r".*self_attn\.(q|o)_proj\.weight": (D, D, ()),
        r".*self_attn\.(k|v)_proj\.weight": (D, 32, ()),  # 2 kv heads of 16
        r".*mlp\.(gate|up)_proj\.weight": (D, FF, ()),
        r".*mlp\.down_proj\.weight": (FF, D, ()),
        r"lm_head\.weight": (D, V, ()),
    },
    "t5": {
        r"shared\.weight": (V, D, ()),
        r".*layer_norm\.weight": _NORM,
        r".*(SelfAttention|EncDecAttention)\.(q|k|v|o)\.weight": (D, D, ()),  # 4 heads x 16
        r".*relative_attention_bias\.weight": (32, HEADS, ()),  # buckets x heads
        r".*DenseReluDense\.wi\.weight": (D, FF, ()),
        r".*DenseReluDense\.wo\.weight": (FF, D, ()),
    },
    "vit": {
        r"embeddings\.cls_token": (1, D, ()),
        r"embeddings\.position_embeddings": (17, D, ()),  # 16 patches + cls, not 17·64/64
        r"embeddings\.patch_embeddings\.projection\.(weight|bias)": (3 * 64, D * 64, ()),
        r".*(layernorm_before|layernorm_after)\.(weight|bias)|layernorm\.(weight|bias)": _NORM,
        r".*attention\.(q|k|v|o)_proj\.(weight|bias)|pooler\.dense\.(weight|bias)": (D, D, ()),
        r".*mlp\.fc1\.(weight|bias)": (D, FF, ()),
        r".*mlp\.fc2\.(weight|bias)": (FF, D, ()),
    },
}
FANS["deit"] = {
    **{k: v for k, v in FANS["vit"].items() if "position_embeddings" not in k},
    r"embeddings\.distillation_token": (1, D, ()),
    r"embeddings\.position_embeddings": (18, D, ()),  # 16 patches + cls + distillation
}
FANS["qwen2"] = {  # Llama's layout; its q/k/v biases take their weight's fans
    **FANS["llama"],
    r".*self_attn\.q_proj\.bias": (D, D, ()),
    r".*self_attn\.(k|v)_proj\.bias": (D, 32, ()),
}


def expected_fans(model: str, name: str) -> tuple[int, int, tuple[str, ...]]:
    """The hand-written fans of parameter ``name`` of zoo model ``model`` (KeyError if none)."""
    hits = [v for pattern, v in FANS[model].items() if re.fullmatch(pattern, name)]
    if len(hits) != 1:
        raise KeyError(f"{model}: {len(hits)} fans-table entries match {name!r}")
    return hits[0]
