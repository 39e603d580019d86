"""Family presets: each library's own init, reproduced in distribution, reading the model.

A family preset is a function whose keyword ``model`` receives the model being planned
(:func:`initlab.policy.get_preset` passes it when the function takes it), so that it reads its
quantities (:func:`model_quantities`: config fields, ``n_layer``) instead of asking the user.
One module per library: :mod:`.hf` (transformers: ``gpt2``, ``bert``, ``llama``, ``t5``,
``vit``, ``hf_auto``), :mod:`.timm` (``timm_vit``, ``swin``, ``convnext``, ``efficientnet``,
``resnet``; :func:`timm_auto`) and :mod:`.torchvision` (:func:`torchvision_auto`).
"""

from ..errors import PolicyError
from ..policy import Policy
from ..presets import register_preset
from ..quantities import model_config, model_quantities
from . import hf, timm, torchvision  # noqa: F401  (register the presets)
from .timm import timm_auto
from .torchvision import torchvision_auto


def _needs_model(name: str, model: object) -> None:
    if model is None:
        raise PolicyError(
            f"{name} picks the family from the model: use it where a model is given "
            f"(initlab.initialize(model, '{name}') or `initlab plan MODEL -p {name}`)"
        )


@register_preset("timm_auto", source="timm: the model's own init_weights family")
def _timm_auto_preset(*, model: object = None) -> Policy:
    """The timm family preset of ``model`` (:func:`timm_auto`), as a named preset.

    Args:
        model: the model being initialised (passed by ``initialize``/``plan``).

    Example:
        >>> from initlab.policy import get_preset
        >>> get_preset("timm-auto")
        Traceback (most recent call last):
        ...
        initlab.policy.errors.PolicyError: timm_auto picks the family from the model: ...
    """
    _needs_model("timm_auto", model)
    return timm_auto(model)  # type: ignore[arg-type]


@register_preset("torchvision_auto", source="torchvision: the model's own init family")
def _torchvision_auto_preset(*, model: object = None) -> Policy:
    """The torchvision family preset of ``model`` (:func:`torchvision_auto`), as a named preset.

    Args:
        model: the model being initialised (passed by ``initialize``/``plan``).
    """
    _needs_model("torchvision_auto", model)
    return torchvision_auto(model)  # type: ignore[arg-type]


__all__ = ["model_config", "model_quantities", "timm_auto", "torchvision_auto"]
