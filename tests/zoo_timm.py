"""The timm/torchvision part of the reference zoo: small configs (2 blocks, widths <= 256 where
the architecture allows), each with the family preset that replays its library's own init.

Each entry builds the model eagerly (the library's own init runs) or, inside
``initlab.meta_build()``, on meta. Nothing downloads (``pretrained=False`` / ``weights=None``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn


@dataclasses.dataclass(frozen=True)
class ZooModel:
    name: str
    build: Callable[[], nn.Module]
    preset: str
    preset_args: dict[str, object] = dataclasses.field(default_factory=dict)


def _timm(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=10, **kwargs)

    return build


def _efficientnet_b0_small() -> nn.Module:
    # efficientnet_b0's generator fixes the multipliers; the same architecture at 1/4 width/depth
    from timm.models.efficientnet import _gen_efficientnet

    return _gen_efficientnet(
        "efficientnet_b0", channel_multiplier=0.25, depth_multiplier=0.25, num_classes=10
    )


def _torchvision_resnet() -> nn.Module:
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10, zero_init_residual=True)


ZOO = {
    m.name: m
    for m in (
        ZooModel(
            "timm_vit",
            _timm("vit_tiny_patch16_224", depth=2, img_size=32, patch_size=8),
            "timm_vit",
        ),
        ZooModel(
            "timm_deit_distilled",  # DeiT: class and distillation tokens, two heads
            _timm("deit_tiny_distilled_patch16_224", depth=2, img_size=32, patch_size=8),
            "timm_vit",
        ),
        ZooModel(
            "timm_deit3",  # DeiT III: LayerScale (init_values 1e-6), no class token in pos_embed
            _timm(
                "deit3_small_patch16_224",
                depth=2,
                img_size=32,
                patch_size=8,
                embed_dim=192,
                num_heads=3,
                init_values=0.1,
            ),
            "timm_vit",
        ),
        ZooModel(
            "timm_resnet18",
            _timm("resnet18", layers=(1, 1, 1, 1), channels=(16, 32, 64, 128)),
            "resnet",
            {"zero_init_last": True, "last_bn": "bn2"},
        ),
        ZooModel(
            "timm_convnext",
            _timm(
                "convnext_atto",
                depths=(1, 1, 1, 1),
                dims=(16, 32, 64, 128),
                ls_init_value=0.5,
                head_init_scale=0.5,
            ),
            "convnext",
            {"ls_init_value": 0.5, "head_init_scale": 0.5},
        ),
        ZooModel(
            "timm_efficientnet_b0",
            _efficientnet_b0_small,
            "efficientnet",
        ),
        ZooModel(
            "timm_swin",
            _timm(
                "swin_tiny_patch4_window7_224",
                img_size=56,
                window_size=7,
                embed_dim=32,
                depths=(2, 1),
                num_heads=(2, 4),
            ),
            "swin",
        ),
        ZooModel(
            "torchvision_resnet",
            _torchvision_resnet,
            "resnet",
            {"zero_init_last": True, "last_bn": "bn2"},
        ),
    )
}
