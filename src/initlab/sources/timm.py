"""``timm:NAME?key=value&...``: a timm model built with ``pretrained=False`` (never downloads).

Example:
    >>> build_timm("", {})
    Traceback (most recent call last):
    ...
    initlab.zoo.ModelError: model spec 'timm:' names no model; write 'timm:NAME'
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from ..syntax import did_you_mean
from ..zoo import ModelError
from .query import parse_query

__all__ = ["build_timm"]


def build_timm(rest: str, offered: dict[str, Any]) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)`` for the spec ``timm:rest``.

    Args:
        rest: ``"resnet18"`` or ``"vit_tiny_patch16_224?depth=2&embed_dim=64"``.
        offered: the caller's ``num_classes`` is passed on unless the spec sets it.

    Returns:
        The model, initialised by timm's own code.

    Raises:
        ModelError: timm is not installed, the name is unknown (with the closest names), or
            timm refuses the arguments.
    """
    name, kwargs = parse_query("timm", rest)
    try:
        timm = importlib.import_module("timm")
    except ImportError:
        raise ModelError(
            f"model 'timm:{rest}' needs timm: pip install timm (it imports torchvision)"
        ) from None
    if not timm.is_model(name):
        hint = did_you_mean(name, timm.list_models())
        raise ModelError(f"unknown timm model {name!r}{hint}; see timm.list_models()")
    if "num_classes" in offered:
        kwargs.setdefault("num_classes", offered["num_classes"])
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:
        raise ModelError(f"timm could not build 'timm:{rest}': {type(e).__name__}: {e}") from e
