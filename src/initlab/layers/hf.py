"""Hugging Face transformers' layers in the registry, by dotted class name (never imported here).

Fans (see :mod:`initlab.layers.torch_nn` for the definitions):

* **Conv1D** (GPT, GPT-2) stores its weight as ``[in, out]`` (``nx, nf``), the transpose of
  Linear: ``fan_in = shape[0]``, ``fan_out = shape[1]``. Its bias shares the weight's fans.
  GPT-2's ``c_attn`` packs q, k and v along dim 1 (the out axis): a Conv1D whose ``nf`` is
  exactly ``3·nx`` gets blocks q/k/v, so at ``n_embd=64`` each block has fans 64/64 (the whole
  weight 64/192). The test is on the layer's shape (the registry sees a layer, not its name), so
  an MLP Conv1D of exactly three times its input width would be split too.
  torch default: what ``Conv1D.__init__`` draws, ``N(0, 0.02²)`` weight and zero bias.
* **RMSNorm / LayerNorm variants** (``LlamaRMSNorm``, ``MistralRMSNorm``, ``Qwen2RMSNorm``,
  ``T5LayerNorm``...): element-wise norm scale, default 1. **Gemma's RMSNorm** computes
  ``x·(1 + w)``, so its neutral value is ``w = 0``: it is registered with role ``norm_scale`` and
  default 0 (``torch_default`` gives 0), and the family presets do not match it with a "ones"
  rule (they name their norm classes).
* **ViT / DeiT embeddings**: ``cls_token``, ``mask_token`` and ``distillation_token``
  ``[1, 1, H]`` (role ``class_token``) have fans 1/H, ``position_embeddings`` ``[1, N, H]``
  (role ``position_embedding``) N/H, as an embedding table of N rows (not the shape
  fallback's N·H/H). Default: ``torch.randn`` (ViT), zeros (DeiT tokens, every ``mask_token``).
* HF's ``nn.Embedding``/``nn.Linear``/``nn.LayerNorm`` (word, position, token-type
  embeddings with their padding row, T5's ``relative_attention_bias`` ``[buckets, heads]``)
  are torch's own layers, registered in :mod:`initlab.layers.torch_nn`.
* Rotary embeddings (``LlamaRotaryEmbedding.inv_freq``) hold no parameters; their buffers are
  computed by the module's own ``__init__`` from the config, so a meta build that keeps
  buffers real (``meta_build(include_buffers=False)``) gets them without any entry here.

Example:
    >>> import initlab
    >>> from transformers.pytorch_utils import Conv1D
    >>> f = initlab.compute_fans(Conv1D(192, 64), "weight")
    >>> f.fan_in, f.fan_out, [b.name for b in f.blocks], f.rule
    (64, 64, ['q', 'k', 'v'], 'hf-conv1d')
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from ..fans import Fans
from .compute import layer_fans
from .defaults import TorchInit
from .registry import register_layer
from .spec import ELEMENTWISE, LayerSpec, Layout, ParamSpec

__all__ = ["CONV1D", "HF_NORMS", "HF_TOKEN_EMBEDDINGS", "ZERO_CENTRED_NORMS"]

CONV1D = "transformers.pytorch_utils.Conv1D"

#: RMSNorm/LayerNorm classes of transformers whose weight multiplies x (neutral value 1)
HF_NORMS: tuple[str, ...] = (
    "transformers.models.llama.modeling_llama.LlamaRMSNorm",
    "transformers.models.mistral.modeling_mistral.MistralRMSNorm",
    "transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm",
    "transformers.models.qwen3.modeling_qwen3.Qwen3RMSNorm",
    "transformers.models.t5.modeling_t5.T5LayerNorm",
)
#: RMSNorms computing x·(1 + w): neutral value 0
ZERO_CENTRED_NORMS: tuple[str, ...] = (
    "transformers.models.gemma.modeling_gemma.GemmaRMSNorm",
    "transformers.models.gemma2.modeling_gemma2.Gemma2RMSNorm",
)
#: the embeddings modules holding cls/mask/distillation tokens and position embeddings
HF_TOKEN_EMBEDDINGS: tuple[str, ...] = (
    "transformers.models.vit.modeling_vit.ViTEmbeddings",
    "transformers.models.deit.modeling_deit.DeiTEmbeddings",
)


def _conv1d_blocks(m: nn.Module) -> tuple[str, ...]:
    nx, nf = getattr(m, "nx", None), getattr(m, "nf", None)
    return ("q", "k", "v") if nx and nf == 3 * nx else ()


def _conv1d_bias(m: nn.Module, name: str, shape: tuple[int, ...]) -> Fans:
    """The weight's fans, its blocks moved to the bias's only dimension."""
    w = layer_fans(m, "weight", tuple(int(s) for s in m.weight.shape))
    assert w is not None  # the weight is described above
    blocks = tuple(dataclasses.replace(b, dim=0) for b in w.blocks)
    return dataclasses.replace(w, blocks=blocks, attrs=())


def _conv1d_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    return {"in_features": int(m.nx), "out_features": int(m.nf)}


register_layer(
    CONV1D,
    LayerSpec(
        "hf-conv1d",
        {
            "weight": ParamSpec(
                "weight",
                Layout(in_axes=(0,), out_axes=(1,)),
                blocks=_conv1d_blocks,
                block_dim=1,
                torch_init=TorchInit("normal", 0.02),
            ),
            "bias": ParamSpec("bias", fans=_conv1d_bias, torch_init=TorchInit("zeros")),
        },
        _conv1d_attrs,
    ),
)

_ONES = {
    "weight": ParamSpec("norm_scale", ELEMENTWISE, torch_init=TorchInit("constant", 1.0)),
    "bias": ParamSpec("norm_shift", ELEMENTWISE, torch_init=TorchInit("constant", 0.0)),
}
for _name in HF_NORMS:
    register_layer(_name, LayerSpec("norm-elementwise", _ONES))
for _name in ZERO_CENTRED_NORMS:
    register_layer(
        _name,
        LayerSpec(
            "norm-elementwise-zero-centred",
            {"weight": ParamSpec("norm_scale", ELEMENTWISE, torch_init=TorchInit("zeros"))},
        ),
    )


def _token_spec(token_init: TorchInit, position_init: TorchInit) -> LayerSpec:
    # [1, rows, H]: rows are the table's entries (fan_in, as an Embedding), H its width
    table = Layout(in_axes=(1,), out_axes=(2,))
    token = ParamSpec("class_token", table, torch_init=token_init)
    return LayerSpec(
        "hf-token-embeddings",
        {
            "cls_token": token,
            "distillation_token": token,
            "mask_token": ParamSpec("class_token", table, torch_init=TorchInit("zeros")),
            "position_embeddings": ParamSpec("position_embedding", table, torch_init=position_init),
        },
    )


register_layer(
    HF_TOKEN_EMBEDDINGS[0], _token_spec(TorchInit("normal", 1.0), TorchInit("normal", 1.0))
)
register_layer(HF_TOKEN_EMBEDDINGS[1], _token_spec(TorchInit("zeros"), TorchInit("zeros")))
