"""torchvision's layers in the registry, by dotted class name (resolved only once torchvision is
imported; this module never imports it).

torchvision builds its CNNs (ResNet, MobileNet, EfficientNet...) from torch's own layers
(``Conv2dNormActivation`` and ``SqueezeExcitation`` are containers of Conv2d, BatchNorm2d and
Linear), which :mod:`initlab.layers.torch_nn` covers. Its ViT owns two tables:

* ``VisionTransformer.class_token`` ``[1, 1, D]``: role ``class_token``, fans ``(1, D)``
  (torchvision initialises it to zeros);
* ``Encoder.pos_embedding`` ``[1, N, D]``: role ``position_embedding``, fans ``(N, D)``
  (torchvision: N(0, .02²)).

Example:
    >>> from initlab.layers.registry import _NAMES
    >>> "torchvision.models.vision_transformer.Encoder" in _NAMES
    True
"""

from __future__ import annotations

from .defaults import TorchInit
from .registry import register_layer
from .spec import LayerSpec, ParamSpec
from .timm import TABLE

__all__: list[str] = []

register_layer(
    "torchvision.models.vision_transformer.VisionTransformer",
    LayerSpec(
        "torchvision-vit-tokens",
        {"class_token": ParamSpec("class_token", TABLE, torch_init=TorchInit("zeros"))},
    ),
)
register_layer(
    "torchvision.models.vision_transformer.Encoder",
    LayerSpec(
        "torchvision-vit-tokens",
        {
            "pos_embedding": ParamSpec(
                "position_embedding", TABLE, torch_init=TorchInit("normal", 0.02)
            )
        },
    ),
)
