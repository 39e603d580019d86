"""``hf:`` model specs: a transformers model built from its config class, never downloaded.

``hf:MODEL_TYPE?field=value&field=value`` builds ``AutoConfig.for_model(MODEL_TYPE, **fields)``
and the model class for it: decoder-only types (``gpt2``, ``llama``, ``mistral``, ``qwen2``...)
their causal-LM class (``GPT2LMHeadModel``), ``t5`` its ``T5ForConditionalGeneration``, encoder
types (``bert``, ``roberta``, ``vit``...) their base model (``BertModel``). Add
``head=base|causal_lm|seq2seq_lm|masked_lm`` to choose. Values are parsed as
int, float, bool or str (:func:`initlab.syntax.parse_value`). Nothing is read from the Hub.

transformers is imported only when such a spec is built.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..syntax import did_you_mean, parse_value
from ..zoo import ModelError

__all__ = ["HEADS", "build_hf_model", "parse_hf_spec"]

#: head= values -> the transformers auto class
HEADS = {
    "base": "AutoModel",
    "causal_lm": "AutoModelForCausalLM",
    "seq2seq_lm": "AutoModelForSeq2SeqLM",
    "masked_lm": "AutoModelForMaskedLM",
}
_ENCODERS = {"bert", "roberta", "vit", "deit", "distilbert", "albert", "electra"}


def parse_hf_spec(rest: str) -> tuple[str, dict[str, Any]]:
    """``"gpt2?n_layer=2&n_embd=64"`` -> ``("gpt2", {"n_layer": 2, "n_embd": 64})``.

    Example:
        >>> parse_hf_spec("llama?hidden_size=64&tie_word_embeddings=true&hidden_act=silu")
        ('llama', {'hidden_size': 64, 'tie_word_embeddings': True, 'hidden_act': 'silu'})
    """
    kind, _, query = rest.strip().partition("?")
    if not kind:
        raise ModelError("hf: model spec needs a model type, e.g. 'hf:gpt2?n_layer=2&n_embd=64'")
    fields: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ModelError(
                f"hf:{rest}: {item!r} is not field=value; write e.g. 'hf:gpt2?n_layer=2&n_embd=64'"
            )
        fields[key] = parse_value(value.strip())
    return kind.strip().lower(), fields


def _head(kind: str, head: str | None) -> str:
    if head is not None:
        if head not in HEADS:
            raise ModelError(f"hf: unknown head {head!r}; use one of {', '.join(HEADS)}")
        return HEADS[head]
    if kind == "t5":
        return HEADS["seq2seq_lm"]
    return HEADS["base"] if kind in _ENCODERS else HEADS["causal_lm"]


def build_hf_model(rest: str, offered: dict[str, Any] | None = None) -> nn.Module:
    """Build the model of an ``hf:`` spec (see the module docstring) from its config.

    Args:
        rest: what follows ``hf:`` (``"gpt2?n_layer=2&n_embd=64"``).
        offered: keywords a caller offers (unused: the config says everything).

    Raises:
        ModelError: transformers missing, an unknown model type or config field (the message
            lists the valid ones), or a config the model class refuses.

    Example:
        >>> spec = "gpt2?n_layer=1&n_embd=32&n_head=2&vocab_size=64&bos_token_id=0&eos_token_id=0"
        >>> m = build_hf_model(spec)
        >>> type(m).__name__, m.config.n_layer
        ('GPT2LMHeadModel', 1)
    """
    kind, fields = parse_hf_spec(rest)
    head = fields.pop("head", None)
    try:
        import transformers
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        raise ModelError("hf: model specs need transformers: pip install 'initlab[hf]'") from None
    if kind not in CONFIG_MAPPING:
        types = sorted(CONFIG_MAPPING.keys())
        raise ModelError(
            f"hf: unknown model type {kind!r}{did_you_mean(kind, types)}; valid types: "
            f"{', '.join(types)}"
        )
    config_cls = CONFIG_MAPPING[kind]
    default = config_cls()
    known = set(default.to_dict()) | set(getattr(config_cls, "attribute_map", {}))
    known = {k for k in known if not k.startswith("_")}
    unknown = sorted(set(fields) - known)
    if unknown:
        hint = did_you_mean(unknown[0], sorted(known))
        raise ModelError(
            f"hf:{kind}: unknown config field(s) {', '.join(unknown)}{hint}; "
            f"{config_cls.__name__} "
            f"fields are: {', '.join(sorted(known))}"
        )
    config = config_cls(**fields)
    auto = getattr(transformers, _head(kind, head))
    try:
        return auto.from_config(config)
    except (ValueError, TypeError, KeyError) as e:
        raise ModelError(f"hf:{rest}: {type(e).__name__}: {e}") from None
