"""timm's layers in the registry, by dotted class name (resolved only once timm is imported;
this module never imports timm).

What each one connects (fans as in :mod:`initlab.layers.torch_nn`):

* **Attention** (``timm.layers.attention.Attention``, ViT/DeiT) and **WindowAttention**
  (Swin): ``qkv = Linear(dim, 3·dim)`` packs q, k, v along dim 0, so ``qkv.weight`` has the
  fans of one projection, ``(dim, dim)``, with blocks q, k, v (xavier then gives
  ``sqrt(2/(192+192))`` = 0.072 at dim 192, not the whole-tensor 0.051); ``qkv.bias`` the same
  blocks. The layer describes its child's parameters (``children={"qkv": {}}``).
* **VisionTransformer** ``pos_embed`` ``[1, N, D]``: a table of ``N`` positions, read as an
  embedding (``fan_in = N``, ``fan_out = D``, role ``position_embedding``); ``cls_token`` and
  ``reg_token`` ``[1, n, D]`` likewise (role ``class_token``), and the distilled DeiT's
  ``dist_token``. Defaults: timm's ``init_weights``, N(0, .02²) for ``pos_embed`` and
  ``dist_token``, N(0, 1e-12) for the others.
* **Swin** ``relative_position_bias_table`` ``[(2W-1)², heads]``: an embedding of relative
  offsets (``fan_in = (2W-1)²``, ``fan_out = heads``, role ``position_embedding``).
* **LayerScale** / **LayerScale2d** ``gamma`` and the ConvNeXt block's ``gamma``: element-wise
  (``fan_in = fan_out = 1``), role ``layer_scale``; LayerScale's default is its
  ``init_values``.
* timm's norms that are not torch norm subclasses (``RmsNorm``, ``RmsNorm2d``,
  ``SimpleNorm``...): element-wise scale/shift. ``LayerNorm2d``, ``BatchNormAct2d``,
  ``GroupNormAct``... subclass torch's norms and are matched through their MRO.

Example:
    >>> from initlab.layers.registry import _NAMES
    >>> "timm.layers.attention.Attention" in _NAMES
    True
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .defaults import TorchInit
from .registry import register_layer
from .spec import ELEMENTWISE, LINEAR, LayerSpec, Layout, ParamSpec
from .torch_nn import BIAS_UNIFORM, KAIMING, NORM

__all__: list[str] = []

QKV = ("q", "k", "v")
#: an embedding-like table ``[..., rows, dim]``: fan_in = rows, fan_out = dim
TABLE = Layout(in_axes=(-2,), out_axes=(-1,))
#: timm's own init of its tables, trunc_normal_(std=.02, a=-2, b=2): the bounds lie at ±100
#: std, so it is N(0, .02²) to every digit a float32 holds
TRUNC_02 = TorchInit("normal", 0.02)


def _qkv_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    return {"num_heads": int(m.num_heads)}


_QKV_PARAMS = {
    "qkv.weight": ParamSpec("weight", LINEAR, blocks=QKV, torch_init=KAIMING),
    "qkv.bias": ParamSpec("bias", fans_of="qkv.weight", torch_init=BIAS_UNIFORM),
}

register_layer(
    "timm.layers.attention.Attention",
    LayerSpec("timm-attention", _QKV_PARAMS, _qkv_attrs, children={"qkv": {}}),
)
register_layer(
    "timm.models.swin_transformer.WindowAttention",
    LayerSpec(
        "timm-window-attention",
        {
            **_QKV_PARAMS,
            "relative_position_bias_table": ParamSpec(
                "position_embedding", TABLE, torch_init=TRUNC_02
            ),
        },
        _qkv_attrs,
        children={"qkv": {}},
    ),
)

_TOKENS = {
    "pos_embed": ParamSpec("position_embedding", TABLE, torch_init=TRUNC_02),
    "cls_token|reg_token": ParamSpec("class_token", TABLE, torch_init=TorchInit("normal", 1e-6)),
    "dist_token": ParamSpec("class_token", TABLE, torch_init=TRUNC_02),
}
register_layer(
    "timm.models.vision_transformer.VisionTransformer", LayerSpec("timm-vit-tokens", _TOKENS)
)


def _layer_scale_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    return {"init_values": float(m.init_values)}


_LAYER_SCALE = LayerSpec(
    "layer-scale",
    {
        "gamma": ParamSpec(
            "layer_scale", ELEMENTWISE, torch_init=TorchInit("constant_attr", "init_values")
        )
    },
    _layer_scale_attrs,
)
register_layer("timm.layers.layer_scale.LayerScale", _LAYER_SCALE)
register_layer("timm.layers.layer_scale.LayerScale2d", _LAYER_SCALE)
# timm keeps no record of ls_init_value on the block: the family preset supplies it
register_layer(
    "timm.models.convnext.ConvNeXtBlock",
    LayerSpec("layer-scale", {"gamma": ParamSpec("layer_scale", ELEMENTWISE)}),
)

for _norm in ("RmsNorm", "RmsNormFp32", "RmsNorm2d", "RmsNorm2dFp32", "SimpleNorm", "SimpleNorm2d"):
    register_layer(f"timm.layers.norm.{_norm}", NORM)
