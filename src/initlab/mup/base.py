"""The base model muP scales from: given as a model, a config, or a ``{dim_name: size}`` map.

* a model: used as it is (build it on meta: ``with initlab.meta_build(): base = Net(64)``);
* a config object (anything that is not a module or a mapping, e.g. a transformers config):
  the base is ``type(model)(config)``, built on meta;
* a ``{dim_name: base_size}`` map, for models that carry a config (``model.config``, as
  transformers models do): a copy of the config with those fields set, built on meta. Names
  are config fields (``n_embd``, ``hidden_size``, ``intermediate_size``...; transformers'
  ``attribute_map`` aliases work), plus ``"width"``: the config's ``hidden_size``, with
  ``intermediate_size`` (``n_inner``, ``ffn_dim``, ``d_ff``) and ``head_dim`` scaled by the same
  ratio when the config sets them (so the number of heads stays).
  Models without a config refuse a map: pass a base model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..execute import meta_build
from .classify import MupError

__all__ = ["BaseLike", "base_model", "unwrap"]

BaseLike = nn.Module | Mapping[str, int] | Any


def unwrap(model: nn.Module) -> nn.Module:
    """The module under a ``torch.compile`` wrapper (itself otherwise).

    Args:
        model: a module, compiled or not.

    Returns:
        ``model._orig_mod`` for a compiled module, else ``model``.

    Example:
        >>> from torch import nn
        >>> m = nn.Linear(2, 2)
        >>> unwrap(m) is m
        True
    """
    inner = getattr(model, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) else model


def _build(cls: type, config: Any) -> nn.Module:
    try:
        with meta_build():
            return cls(config)
    except Exception as e:  # a config the class rejects: say which, with the class's words
        raise MupError(
            f"could not build the base {cls.__name__} from the base config ({e}); pass a base "
            "model instead (with initlab.meta_build(): base = ...)"
        ) from None


def _width_fields(config: Any, ratio: float) -> dict[str, int]:
    out = {}
    for name in ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "head_dim"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            out[name] = max(1, round(value * ratio))
    return out


def base_model(model: nn.Module, base: BaseLike) -> nn.Module:
    """The base model for ``model`` (see the module doc for the forms ``base`` takes).

    Args:
        model: the (wide) model.
        base: a base model, a base config, or a ``{dim_name: base_size}`` map.

    Returns:
        A base model with the same parameter names (built on meta unless given).

    Raises:
        MupError: a map for a model without a config, an unknown field, or a config the
            model's class cannot build.

    Example:
        >>> from torch import nn
        >>> try:
        ...     base_model(nn.Linear(4, 4), {"width": 2})
        ... except MupError as e:
        ...     print(str(e)[:60])
        a {dim_name: size} base needs a model with a .config (Linear
    """
    if isinstance(base, nn.Module):
        return base
    inner = unwrap(model)
    if isinstance(base, Mapping):
        config = getattr(inner, "config", None)
        if config is None:
            raise MupError(
                f"a {{dim_name: size}} base needs a model with a .config ({type(inner).__name__} "
                "has none): pass a base model instead (with initlab.meta_build(): base = ...)"
            )
        cfg = copy.deepcopy(config)
        for key, size in base.items():
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise MupError(f"base size for {key!r} must be a positive int, got {size!r}")
            if key == "width":
                if not isinstance(getattr(cfg, "hidden_size", None), int):
                    raise MupError(
                        f"'width' maps to the config's hidden_size, which "
                        f"{type(cfg).__name__} lacks: name the width fields instead"
                    )
                ratio = size / cfg.hidden_size
                for name, value in _width_fields(cfg, ratio).items():
                    setattr(cfg, name, value)
                cfg.hidden_size = size
                continue
            if not hasattr(cfg, key):
                raise MupError(
                    f"unknown dim {key!r}: {type(cfg).__name__} has no such field; use its "
                    "fields (e.g. hidden_size, intermediate_size) or 'width'"
                )
            setattr(cfg, key, size)
        return _build(type(inner), cfg)
    return _build(type(inner), base)
