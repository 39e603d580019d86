"""Hugging Face transformers' own inits as presets: ``gpt2``, ``bert``, ``llama``, ``t5``,
``vit`` and ``hf_auto``, which picks one from ``model.config.model_type``.

Each reproduces, parameter group by parameter group and in distribution, what the installed
transformers' ``_init_weights`` does (``PreTrainedModel._init_weights`` in
``transformers/modeling_utils.py`` and the model's override), and reads what it needs from the
model's config (``initializer_range``, ``n_layer``, ``initializer_factor``, ``d_model``...) when
the preset is given the model (``initlab.initialize(model, "bert")``), or from its arguments:

* base (every family): ``nn.Linear``/``Conv*`` weight ``N(0, r²)``, bias 0; ``nn.Embedding``
  ``N(0, r²)`` with its padding row 0; LayerNorm/RMSNorm weight 1, bias 0;
  ``r = initializer_range``.
* ``gpt2``: also ``Conv1D`` ``N(0, r²)``; the residual projections ``c_proj`` (attention and
  MLP) ``N(0, (r/sqrt(2·n_layer))²)`` (Radford et al. 2019).
* ``bert`` (RoBERTa too): base, plus the LM head's bias 0.
* ``llama`` (Mistral, Qwen2, Qwen3): base; the q/k/v biases of Qwen2 are 0.
* ``t5`` (``f = initializer_factor``): ``shared``/``lm_head`` ``N(0, f²)``; attention q
  ``N(0, f²/(d_model·d_kv))``, k and v ``N(0, f²/d_model)``, o ``N(0, f²/(n_heads·d_kv))``;
  ``relative_attention_bias`` ``N(0, f²/d_model)``; feed-forward ``wi*`` ``N(0, f²/d_model)``,
  ``wo`` ``N(0, f²/d_ff)``; T5LayerNorm ``f``.
* ``vit``: base, plus ``position_embeddings`` and ``cls_token`` ``trunc_normal(0, r², [-2, 2])``
  (absolute bounds, as ``torch.nn.init.trunc_normal_``), ``mask_token`` 0; DeiT's embeddings
  (cls, distillation and mask tokens, position embeddings) 0.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..errors import PolicyError, at
from ..patterns import compile_pattern
from ..policy import Policy
from ..presets import EMBEDDINGS, LINEAR, register_preset
from ..quantities import model_config, model_quantities
from ..rules import Rule

__all__ = ["FAMILIES", "GPT2_RESIDUAL", "hf_family"]

CONV = "torch.nn.modules.conv._ConvNd"
LAYERNORM = "torch.nn.LayerNorm"
#: the norm classes a family preset sets to 1 (Gemma's zero-centred RMSNorm is left out)
RMSNORMS = ("torch.nn.RMSNorm", "LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")

#: module names of GPT-2-style residual output projections (GPT-2/nanoGPT ``c_proj``,
#: MultiheadAttention ``out_proj``, MLP ``fc2`` and TransformerEncoderLayer ``linear2``)
GPT2_RESIDUAL = ("*c_proj", "*out_proj", r"re:(.*\.)?fc2", r"re:(.*\.)?linear2")

#: config.model_type -> family preset
FAMILIES: dict[str, str] = {
    "gpt2": "gpt2",
    "bert": "bert",
    "roberta": "bert",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "t5": "t5",
    "vit": "vit",
    "deit": "vit",
}


def _positive(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise PolicyError(f"must be a positive number, got {value!r}", what)
    return float(value)


def _quantity(model: nn.Module | None, given: Any, field: str, default: Any = None) -> Any:
    """``given`` if set, else the model's quantity ``field``, else ``default``."""
    if given is not None:
        return given
    if model is not None:
        found = model_quantities(model).get(field)
        if found is not None:
            return found
    return default


def _normal(std: float) -> dict[str, Any]:
    return {"name": "normal", "std": float(std)}


def _base(std: float, norms: tuple[str, ...] = (LAYERNORM,)) -> list[Rule]:
    """``PreTrainedModel._init_weights``: Linear/Conv N(0, std²) and bias 0, Embedding N(0, std²)
    (padding row 0), norms 1/0."""
    return [
        Rule(_normal(std), module=(LINEAR, CONV), param="weight", id="linear-weight"),
        Rule("zeros", module=(LINEAR, CONV), param="bias", id="linear-bias"),
        Rule(_normal(std), module=EMBEDDINGS, param="weight", id="embedding"),
        Rule("ones", module=norms, param="weight", id="norm-weight"),
        Rule("zeros", module=norms, param="bias", id="norm-bias"),
    ]


@register_preset(
    "gpt2", source="Radford et al. 2019; HF transformers GPT2PreTrainedModel._init_weights"
)
def gpt2(
    *,
    n_layers: int | None = None,
    std: float | None = None,
    residual: str | tuple[str, ...] | list[str] = GPT2_RESIDUAL,
    model: nn.Module | None = None,
) -> Policy:
    """GPT-2: N(0, 0.02²) weights, residual projections scaled by 1/sqrt(2·n_layers).

    As in OpenAI's GPT-2 code (Radford et al. 2019), HF transformers and nanoGPT:

    * residual output projections: weight N(0, (std/sqrt(2·n_layers))²), two residual
      additions per layer. ``residual`` is the module-name patterns that select them, by
      default ``*c_proj``, ``*out_proj``, ``fc2`` and ``linear2`` at any depth (see
      :data:`GPT2_RESIDUAL`); pass your own (a pattern or a list) for other naming;
    * Linear (and HF's ``Conv1D``), Embedding and MultiheadAttention q/k/v projection weights:
      N(0, std²), std = 0.02;
    * biases (Linear, Conv1D, MultiheadAttention) 0; LayerNorm (and RMSNorm) weight 1, bias 0.

    Args:
        n_layers: the number of transformer layers, e.g. 12 for GPT-2 small; read from the
            model (its config's ``n_layer``, else its longest ModuleList) when it is given.
        std: the base standard deviation (default: the config's ``initializer_range``, 0.02).
        residual: module-name patterns (globs or ``re:``) of the residual projections.
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    n_layers = _quantity(model, n_layers, "n_layer")
    if n_layers is None or (model is not None and n_layers == 0):
        raise PolicyError(
            "the gpt2 preset needs the number of transformer layers: pass n_layers, e.g. "
            "get_preset('gpt2', n_layers=12) or 'gpt2:n_layers=12'",
            "n_layers",
        )
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
        raise PolicyError(f"must be an int >= 1, got {n_layers!r}", "n_layers")
    std = _positive(_quantity(model, std, "initializer_range", 0.02), "std")
    patterns = (residual,) if isinstance(residual, str) else residual
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise PolicyError(f"expected a pattern or a list of patterns, got {residual!r}", "residual")
    for i, p in enumerate(patterns):
        with at("residual" if isinstance(residual, str) else f"residual[{i}]"):
            compile_pattern(p)
    scaled = _normal(std / math.sqrt(2 * n_layers))
    base = _normal(std)
    linear = (LINEAR, "Conv1D")
    mha = "torch.nn.MultiheadAttention"
    rules = [
        Rule(scaled, name=p, param="weight", id=f"residual-proj[{i}]")
        for i, p in enumerate(patterns)
    ]
    rules += [
        Rule(base, module=linear, param="weight", id="linear-weight"),
        Rule(base, module=EMBEDDINGS, param="weight", id="embedding"),
        Rule(base, module=mha, param="*_proj_weight", id="attention-in-proj"),
        Rule("zeros", module=(*linear, mha), param="*bias", id="bias"),
        # by role: LayerNorm, RMSNorm and any duck-typed *Norm (nanoGPT's, a user's own)
        Rule("ones", role="norm_scale", id="norm-weight"),
        Rule("zeros", role="norm_shift", id="norm-bias"),
    ]
    return Policy(
        rules=tuple(rules),
        name="gpt2",
        description=(
            f"GPT-2: N(0, {std}²) weights, residual projections N(0, ({std}/sqrt(2·{n_layers}))²), "
            f"biases 0, LayerNorm 1/0"
        ),
    )


@register_preset("bert", source="HF transformers BertPreTrainedModel._init_weights (RoBERTa too)")
def bert(*, std: float | None = None, model: nn.Module | None = None) -> Policy:
    """BERT/RoBERTa: Linear and Embedding N(0, r²), biases 0, LayerNorm 1/0, LM-head bias 0.

    Source: ``BertPreTrainedModel._init_weights`` / ``RobertaPreTrainedModel._init_weights``
    over ``PreTrainedModel._init_weights`` (transformers); Devlin et al. 2018,
    https://arxiv.org/abs/1810.04805.

    Args:
        std: ``r``, default the config's ``initializer_range`` (0.02).
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    std = _positive(_quantity(model, std, "initializer_range", 0.02), "std")
    heads = ("BertLMPredictionHead", "RobertaLMHead")
    rules = [*_base(std), Rule("zeros", module=heads, param="bias", id="lm-head-bias")]
    return Policy(
        rules=tuple(rules),
        name="bert",
        description=f"BERT: Linear/Embedding N(0, {std}²), biases 0, LayerNorm 1/0",
    )


@register_preset("llama", source="HF transformers PreTrainedModel._init_weights (Llama, Qwen2)")
def llama(*, std: float | None = None, model: nn.Module | None = None) -> Policy:
    """Llama/Mistral/Qwen2: Linear and Embedding N(0, r²), biases 0, RMSNorm 1.

    Source: ``PreTrainedModel._init_weights`` (transformers), which Llama, Mistral and Qwen2 do
    not override for their parameters (Touvron et al. 2023, https://arxiv.org/abs/2302.13971).

    Args:
        std: ``r``, default the config's ``initializer_range`` (0.02).
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    std = _positive(_quantity(model, std, "initializer_range", 0.02), "std")
    return Policy(
        rules=tuple(_base(std, (LAYERNORM, *RMSNORMS))),
        name="llama",
        description=f"Llama: Linear/Embedding N(0, {std}²), biases 0, RMSNorm 1",
    )


def _need(model: nn.Module | None, given: Any, field: str) -> float:
    value = _quantity(model, given, field)
    if value is None:
        raise PolicyError(
            f"the t5 preset needs {field}: give it the model (initlab.initialize(model, 't5')) "
            f"or pass {field}=..., e.g. 't5:{field}=512'",
            field,
        )
    return _positive(value, field)


@register_preset("t5", source="HF transformers T5PreTrainedModel._init_weights (Mesh TF)")
def t5(
    *,
    factor: float | None = None,
    d_model: int | None = None,
    d_kv: int | None = None,
    d_ff: int | None = None,
    num_heads: int | None = None,
    model: nn.Module | None = None,
) -> Policy:
    """T5: projections N(0, f²/fan) by role, embeddings N(0, f²), T5LayerNorm f.

    q ``N(0, f²/(d_model·d_kv))``, k and v ``N(0, f²/d_model)``, o ``N(0, f²/(num_heads·d_kv))``,
    ``relative_attention_bias`` ``N(0, f²/d_model)``, ``wi``/``wi_0``/``wi_1``
    ``N(0, f²/d_model)``, ``wo`` ``N(0, f²/d_ff)``, ``shared`` and ``lm_head`` ``N(0, f²)``,
    biases 0, T5LayerNorm ``f``. Source: ``T5PreTrainedModel._init_weights`` (transformers),
    after Mesh TensorFlow; Raffel et al. 2019, https://arxiv.org/abs/1910.10683.

    Args:
        factor: ``f``, default the config's ``initializer_factor`` (1.0).
        d_model, d_kv, d_ff, num_heads: the model's sizes (default: its config's).
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    f = _positive(_quantity(model, factor, "initializer_factor", 1.0), "factor")
    dm, dkv = _need(model, d_model, "d_model"), _need(model, d_kv, "d_kv")
    dff, heads = _need(model, d_ff, "d_ff"), _need(model, num_heads, "num_heads")
    proj = {
        "q": f * (dm * dkv) ** -0.5,
        "k": f * dm**-0.5,
        "v": f * dm**-0.5,
        "o": f * (heads * dkv) ** -0.5,
        "wi": f * dm**-0.5,
        "wi_0": f * dm**-0.5,
        "wi_1": f * dm**-0.5,
        "wo": f * dff**-0.5,
    }
    rules = [
        Rule({"name": "constant", "val": f}, module="T5LayerNorm", param="weight", id="norm"),
        *(
            Rule(_normal(s), module=LINEAR, name=f"*.{n}", param="weight", id=f"{n}-weight")
            for n, s in proj.items()
        ),
        Rule(
            _normal(f * dm**-0.5),
            name="*relative_attention_bias",
            param="weight",
            id="relative-attention-bias",
        ),
        Rule(_normal(f), module=(*EMBEDDINGS, LINEAR), param="weight", id="embedding"),
        Rule("zeros", module=LINEAR, param="bias", id="bias"),
    ]
    return Policy(
        rules=tuple(rules),
        name="t5",
        description=f"T5: projections N(0, f²/fan) by role, embeddings N(0, f²), f={f}",
    )


@register_preset("vit", source="HF transformers ViTPreTrainedModel._init_weights")
def vit(*, std: float | None = None, model: nn.Module | None = None) -> Policy:
    """HF ViT/DeiT: Linear/Conv N(0, r²), biases 0, LayerNorm 1/0, ViT's position and cls
    tokens trunc_normal(0, r², [-2, 2]), mask token 0; DeiT's tokens and position embeddings 0.

    Source: ``ViTPreTrainedModel._init_weights`` and ``DeiTPreTrainedModel._init_weights``
    (transformers; DeiT's zeroes its cls, distillation and mask tokens and position embeddings
    after drawing them); Dosovitskiy et al. 2020, https://arxiv.org/abs/2010.11929; Touvron et
    al. 2020, https://arxiv.org/abs/2012.12877.

    Args:
        std: ``r``, default the config's ``initializer_range`` (0.02).
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    std = _positive(_quantity(model, std, "initializer_range", 0.02), "std")
    tokens = "ViTEmbeddings"
    trunc = {"name": "trunc_normal", "std": std, "a": -2.0, "b": 2.0}
    rules = [
        Rule("zeros", module="DeiTEmbeddings", param="*", ndim=3, id="deit-tokens"),
        Rule(trunc, module=tokens, param="position_embeddings", id="position-embedding"),
        Rule(trunc, module=tokens, param="cls_token", id="cls-token"),
        Rule("zeros", module=tokens, param="mask_token", id="mask-token"),
        *_base(std),
    ]
    return Policy(
        rules=tuple(rules),
        name="vit",
        description=f"ViT: Linear/Conv N(0, {std}²), tokens trunc_normal(0, {std}²), LN 1/0",
    )


_PRESETS = {"gpt2": gpt2, "bert": bert, "llama": llama, "t5": t5, "vit": vit}


def hf_family(model: nn.Module) -> str:
    """The family preset for a transformers model, from ``model.config.model_type``.

    Raises:
        PolicyError: the model has no config, or its model_type has no family preset.
    """
    config = model_config(model)
    kind = getattr(config, "model_type", None)
    if kind is None:
        raise PolicyError(
            f"hf_auto needs a transformers model (with config.model_type); "
            f"{type(model).__name__} has none: name the family preset instead "
            f"({', '.join(sorted(_PRESETS))})"
        )
    if kind not in FAMILIES:
        raise PolicyError(
            f"hf_auto: no family preset for model_type {kind!r}; known model types: "
            f"{', '.join(sorted(FAMILIES))} (or register_layer/policy rules for it)"
        )
    return FAMILIES[kind]


@register_preset("hf_auto", source="HF transformers: the model's own _init_weights family")
def hf_auto(*, model: nn.Module | None = None) -> Policy:
    """The transformers family preset the model's ``config.model_type`` names.

    gpt2 -> ``gpt2``; bert, roberta -> ``bert``; llama, mistral, qwen2, qwen3 -> ``llama``;
    t5 -> ``t5``; vit, deit -> ``vit``. Needs the model (``initlab.initialize(model, "hf-auto")``).

    Args:
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    if model is None:
        raise PolicyError(
            "hf_auto picks the family from the model: use it with a model "
            "(initlab.initialize(model, 'hf-auto') or initlab plan MODEL -p hf-auto)"
        )
    return _PRESETS[hf_family(model)](model=model)
