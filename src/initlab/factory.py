"""Loading a user's model factory from ``package.module:factory`` or ``path/to/file.py:factory``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn


class FactoryError(ValueError):
    """The factory spec could not be resolved or did not build an nn.Module."""


def load_factory(spec: str) -> Callable[..., Any]:
    """Resolve ``spec`` to a callable. Errors are one line naming what was expected where."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise FactoryError(
            f"model spec {spec!r} must look like 'package.module:factory' or 'file.py:factory'"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise FactoryError(f"model file {str(path)!r} does not exist (from spec {spec!r})")
        name = f"_initlab_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise FactoryError(f"cannot load {str(path)!r} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            raise FactoryError(f"importing {str(path)!r} failed: {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise FactoryError(f"cannot import module {target!r} (from spec {spec!r}): {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"{target!r} has no attribute {attr!r} (from spec {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"{spec!r} is not callable")
    return obj


def build_model(spec: str, **offered: Any) -> nn.Module:
    """Call the factory named by ``spec`` and check that it returns an ``nn.Module``.

    ``offered`` keyword arguments (e.g. ``input_shape``, ``num_classes``) are passed only when
    the factory's signature accepts them, so a factory may take all, some or none of them.
    """
    factory = load_factory(spec)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = None
    if params is None:
        kwargs: dict[str, Any] = {}
    elif any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = dict(offered)
    else:
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        kwargs = {k: v for k, v in offered.items() if k in params and params[k].kind in named}
    try:
        model = factory(**kwargs)
    except Exception as e:
        raise FactoryError(f"calling {spec!r} failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise FactoryError(f"{spec!r} returned {type(model).__name__}, not an nn.Module")
    return model
