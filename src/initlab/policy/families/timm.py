"""timm's own inits as presets (``timm_vit``, ``convnext``, ``efficientnet``, ``swin``; ``resnet``
is shared with torchvision) and ``timm_auto``, which picks the family from the model.

Each preset replays, parameter group by parameter group, what timm 1.0's code does when it
builds the model (read from ``timm/models/*.py``):

* **timm_vit** (``VisionTransformer.init_weights``, mode ``''``, ``init_weights_vit_timm``):
  every Linear weight ``trunc_normal_(std=.02)`` (bounds ±2, i.e. ±100 std), bias 0 (the fused
  qkv block by block: the same law); ``pos_embed`` trunc_normal .02, ``cls_token``/``reg_token``
  N(0, 1e-12), a distilled DeiT's ``dist_token`` trunc_normal .02; LayerScale ``gamma`` its
  ``init_values``; the patch-embedding Conv2d and the norms keep their torch defaults (the
  model calls ``init_weights(needs_reset=False)``).
  DeiT is a VisionTransformer. Dosovitskiy et al. 2020, https://arxiv.org/abs/2010.11929.
* **swin** (``SwinTransformer.init_weights``, the same ``init_weights_vit_timm``): Linear
  trunc_normal .02 / 0; ``relative_position_bias_table`` trunc_normal .02
  (``WindowAttention.reset_parameters``); patch-embedding Conv2d and norms torch defaults.
  Liu et al. 2021, https://arxiv.org/abs/2103.14030.
* **convnext** (``convnext._init_weights``): Conv2d and Linear weights trunc_normal .02, biases
  0; the classifier (``head.*`` Linear) then multiplied by ``head_init_scale`` (std
  ``.02·s`` with bounds ``±2·s``); block ``gamma`` = ``ls_init_value``; norms 1/0.
  Liu et al. 2022, https://arxiv.org/abs/2201.03545.
* **efficientnet** (``_efficientnet_builder._init_weight_goog``, TensorFlow's TPU init): Conv2d
  weights N(0, 2/fan_out) with ``fan_out = k²·out/groups`` (``fix_group_fanout``), biases 0;
  BatchNorm 1/0; Linear weights U(±1/sqrt(out_features)), biases 0. Tan & Le 2019,
  https://arxiv.org/abs/1905.11946.
"""

from __future__ import annotations

from torch import nn

from ..errors import PolicyError
from ..patterns import type_matches
from ..policy import Policy
from ..presets import BATCHNORM, CONV, LINEAR, NORMS, register_preset
from ..rules import Rule
from .torchvision import resnet, resnet_options

__all__ = [
    "TIMM_FAMILIES",
    "convnext",
    "efficientnet",
    "swin",
    "timm_auto",
    "timm_family",
    "timm_vit",
]

TIMM_NORMS = (*NORMS, "timm.layers.norm.RmsNorm", "timm.layers.norm.RmsNorm2d")
LAYER_SCALE = ("timm.layers.layer_scale.LayerScale", "timm.layers.layer_scale.LayerScale2d")
TRUNC_02 = {"name": "trunc_normal", "std": 0.02}

#: model class -> family preset, tried in order (a class or any base class)
TIMM_FAMILIES: dict[str, str] = {
    "timm.models.vision_transformer.VisionTransformer": "timm_vit",
    "timm.models.swin_transformer.SwinTransformer": "swin",
    "timm.models.convnext.ConvNeXt": "convnext",
    "timm.models.efficientnet.EfficientNet": "efficientnet",
    "timm.models.resnet.ResNet": "resnet",
}


def _norms() -> tuple[Rule, ...]:
    return (
        Rule("ones", module=TIMM_NORMS, param="weight", id="norm-weight"),
        Rule("zeros", module=TIMM_NORMS, param="bias", id="norm-bias"),
    )


@register_preset(
    "timm_vit",
    source="timm VisionTransformer.init_weights (mode ''); https://arxiv.org/abs/2010.11929",
)
def timm_vit() -> Policy:
    """timm ViT/DeiT: Linear trunc_normal(.02)/0, pos_embed trunc_normal(.02), cls_token
    N(0, 1e-12), LayerScale its init_values, patch conv and norms torch's default.

    Example:
        >>> [r.id for r in timm_vit().rules][:3]
        ['pos-embed', 'dist-token', 'tokens']
    """
    return Policy(
        rules=(
            Rule(TRUNC_02, param="pos_embed", id="pos-embed"),
            Rule(TRUNC_02, param="dist_token", id="dist-token"),
            Rule({"name": "normal", "std": 1e-6}, param="*_token", ndim=3, id="tokens"),
            Rule(TRUNC_02, module=LINEAR, param="weight", id="linear-weight"),
            Rule("zeros", module=LINEAR, param="bias", id="linear-bias"),
            Rule("torch_default", module=LAYER_SCALE, param="gamma", id="layer-scale"),
            *_norms(),
            Rule("torch_default", module=CONV, id="patch-embed"),
        ),
        name="timm_vit",
        description="timm ViT: Linear trunc_normal(.02)/0, pos_embed trunc_normal(.02), "
        "tokens N(0, 1e-12), LayerScale init_values, patch conv torch default",
    )


@register_preset(
    "swin",
    source="timm SwinTransformer.init_weights; Liu et al. 2021, https://arxiv.org/abs/2103.14030",
)
def swin() -> Policy:
    """timm Swin: Linear trunc_normal(.02)/0, relative_position_bias_table trunc_normal(.02),
    patch conv and norms torch's default.

    Example:
        >>> swin().rules[0].id
        'relative-position-bias'
    """
    return Policy(
        rules=(
            Rule(TRUNC_02, param="relative_position_bias_table", id="relative-position-bias"),
            Rule(TRUNC_02, param="absolute_pos_embed", id="pos-embed"),
            Rule(TRUNC_02, module=LINEAR, param="weight", id="linear-weight"),
            Rule("zeros", module=LINEAR, param="bias", id="linear-bias"),
            *_norms(),
            Rule("torch_default", module=CONV, id="patch-embed"),
        ),
        name="swin",
        description="timm Swin: Linear trunc_normal(.02)/0, relative position bias "
        "trunc_normal(.02), patch conv torch default, norms 1/0",
    )


def _positive(value: object, key: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise PolicyError(f"must be a positive number, got {value!r}", key)
    return float(value)


@register_preset(
    "convnext",
    source="timm convnext._init_weights; Liu et al. 2022, https://arxiv.org/abs/2201.03545",
)
def convnext(*, ls_init_value: float = 1e-6, head_init_scale: float = 1.0) -> Policy:
    """timm ConvNeXt: Conv2d/Linear trunc_normal(.02)/0, head scaled by head_init_scale, block
    gamma = ls_init_value, norms 1/0.

    Args:
        ls_init_value: the blocks' layer-scale value (timm's default 1e-6).
        head_init_scale: the factor on the classifier's weight and bias (timm's default 1).

    Example:
        >>> convnext(head_init_scale=0.5).rules[1].scheme.to_config()["std"]
        0.01
    """
    ls = _positive(ls_init_value, "ls_init_value")
    s = _positive(head_init_scale, "head_init_scale")
    head = {"name": "trunc_normal", "std": 0.02 * s, "a": -2.0 * s, "b": 2.0 * s}
    return Policy(
        rules=(
            Rule({"name": "constant", "val": ls}, param="gamma", ndim=1, id="layer-scale"),
            Rule(head, module=LINEAR, name="head.*", param="weight", id="head-weight"),
            Rule(TRUNC_02, module=(CONV, LINEAR), param="weight", id="weight"),
            Rule("zeros", module=(CONV, LINEAR), param="bias", id="bias"),
            *_norms(),
        ),
        name="convnext",
        description=f"timm ConvNeXt: conv/linear trunc_normal(.02)/0, head x{s}, gamma {ls}, "
        "norms 1/0",
    )


@register_preset(
    "efficientnet",
    source="timm _efficientnet_builder._init_weight_goog; https://arxiv.org/abs/1905.11946",
)
def efficientnet() -> Policy:
    """timm EfficientNet/MobileNetV3 (TensorFlow's init): conv N(0, 2/fan_out), BatchNorm 1/0,
    Linear U(±1/sqrt(out_features)), biases 0.

    Example:
        >>> efficientnet().rules[0].scheme.to_config()["mode"]
        'fan_out'
    """
    return Policy(
        rules=(
            Rule(
                {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"},
                module=CONV,
                param="weight",
                id="conv-weight",
            ),
            Rule(
                {
                    "name": "variance_scaling",
                    "scale": 1 / 3,
                    "mode": "fan_out",
                    "distribution": "uniform",
                },
                module=LINEAR,
                param="weight",
                id="linear-weight",
            ),
            Rule("zeros", module=(CONV, LINEAR), param="bias", id="bias"),
            Rule("ones", module=BATCHNORM, param="weight", id="norm-weight"),
            Rule("zeros", module=BATCHNORM, param="bias", id="norm-bias"),
        ),
        name="efficientnet",
        description="timm EfficientNet: conv N(0, 2/fan_out), Linear U(±1/sqrt(out)), "
        "biases 0, BatchNorm 1/0",
    )


def timm_family(model: nn.Module) -> str:
    """The family preset of a timm model, from its class (see :data:`TIMM_FAMILIES`).

    Raises:
        PolicyError: a model of no supported family (the message lists them).

    Example:
        >>> try:
        ...     timm_family(nn.Linear(2, 2))
        ... except PolicyError as e:
        ...     print(str(e).split(" (")[0])
        timm_auto: Linear is not a model of a known timm family
    """
    for cls, family in TIMM_FAMILIES.items():
        if type_matches(cls, type(model)):
            return family
    known = ", ".join(c.rpartition(".")[2] for c in TIMM_FAMILIES)
    raise PolicyError(
        f"timm_auto: {type(model).__name__} is not a model of a known timm family ({known}); "
        "name a preset instead"
    )


def _layer_scale(model: nn.Module, default: float) -> float:
    """ConvNeXt's ls_init_value, read from a real block gamma (timm keeps no other record)."""
    for name, p in model.named_parameters():
        if name.endswith(".gamma") and not p.is_meta and p.numel():
            return float(p.detach().reshape(-1)[0])
    return default


def timm_auto(model: nn.Module) -> Policy:
    """The timm family preset for ``model``, with the arguments the model holds.

    ViT's mode must be timm's default (``''``); ResNet's ``zero_init_last`` and ConvNeXt's
    ``ls_init_value`` are read from real weights (on meta: timm's defaults, True and 1e-6).

    Args:
        model: a timm model (VisionTransformer/DeiT, SwinTransformer, ConvNeXt, EfficientNet,
            ResNet).

    Returns:
        The family's policy.

    Raises:
        PolicyError: no known family, or an init mode the presets do not replay.

    Example:
        >>> try:
        ...     timm_auto(nn.Conv2d(1, 1, 1))
        ... except PolicyError as e:
        ...     print(str(e).split(" (")[0])
        timm_auto: Conv2d is not a model of a known timm family
    """
    family = timm_family(model)
    if family in ("timm_vit", "swin"):
        mode = getattr(model, "weight_init_mode", "")
        if mode != "" or getattr(model, "fix_init", False):
            raise PolicyError(
                f"timm_auto: the model was built with weight_init={mode!r}"
                f"{', fix_init=True' if getattr(model, 'fix_init', False) else ''}; the "
                f"{family} preset replays timm's default (weight_init='', fix_init=False)"
            )
        return timm_vit() if family == "timm_vit" else swin()
    if family == "convnext":
        return convnext(ls_init_value=_layer_scale(model, 1e-6))
    if family == "efficientnet":
        return efficientnet()
    return resnet(**resnet_options(model, True))  # type: ignore[arg-type]
