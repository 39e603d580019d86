"""``torchvision:NAME?key=value&...``: a torchvision model built with ``weights=None`` (never
downloads).

Example:
    >>> build_torchvision("?x=1", {})
    Traceback (most recent call last):
    ...
    initlab.zoo.ModelError: model spec 'torchvision:?x=1' names no model; write 'torchvision:NAME'
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from ..syntax import did_you_mean
from ..zoo import ModelError
from .query import parse_query

__all__ = ["build_torchvision"]


def build_torchvision(rest: str, offered: dict[str, Any]) -> nn.Module:
    """``torchvision.models.get_model(name, weights=None, **kwargs)`` for ``torchvision:rest``.

    Args:
        rest: ``"resnet18"`` or ``"mobilenet_v3_small?width_mult=0.5"``.
        offered: the caller's ``num_classes`` is passed on unless the spec sets it.

    Returns:
        The model, initialised by torchvision's own code.

    Raises:
        ModelError: torchvision is not installed, the name is unknown (with the closest
            name), or torchvision refuses the arguments.
    """
    name, kwargs = parse_query("torchvision", rest)
    try:
        models = importlib.import_module("torchvision.models")
    except ImportError:
        raise ModelError(
            f"model 'torchvision:{rest}' needs torchvision: pip install torchvision (the build "
            "matching your torch)"
        ) from None
    known = models.list_models()
    if name not in known:
        hint = did_you_mean(name, known)
        raise ModelError(
            f"unknown torchvision model {name!r}{hint}; see torchvision.models.list_models()"
        )
    if "num_classes" in offered:
        kwargs.setdefault("num_classes", offered["num_classes"])
    try:
        return models.get_model(name, weights=None, **kwargs)
    except Exception as e:
        raise ModelError(
            f"torchvision could not build 'torchvision:{rest}': {type(e).__name__}: {e}"
        ) from e
