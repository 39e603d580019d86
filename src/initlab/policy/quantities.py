"""What a family preset or a policy expression may read from a model: its quantities.

:func:`model_quantities` gives a model's numeric config fields (a Hugging Face ``config``,
through ``to_dict()``, or any ``config`` object with numeric attributes) and three counted or
derived ones:

* ``n_layer``: read from the config (``num_hidden_layers``/``n_layer``/``num_layers``/
  ``n_layers``) or, without one, counted as the length of the model's longest
  ``nn.ModuleList`` (its stack of blocks);
* ``n_params``: the number of parameter elements, tied parameters once;
* ``width``: the model's hidden size, where the config names it (``hidden_size``, ``n_embd``,
  ``d_model``, ``embed_dim``, ``dim``).

They are the names a policy expression (:mod:`initlab.policy.expressions`) may use, e.g.
``std: "0.02 / sqrt(2 * n_layer)"``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["model_config", "model_quantities"]

_LAYER_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_WIDTH_FIELDS = ("hidden_size", "n_embd", "d_model", "embed_dim", "dim")


def model_config(model: nn.Module | None) -> Any:
    """The model's ``config`` object (Hugging Face's ``PretrainedConfig``), or None.

    Args:
        model: a model, or None.

    Returns:
        ``model.config`` when there is one, else None.

    Example:
        >>> model_config(nn.Linear(2, 2)) is None
        True
    """
    return getattr(model, "config", None) if model is not None else None


def _numbers(config: Any) -> dict[str, float]:
    if hasattr(config, "to_dict"):
        fields = dict(config.to_dict())
    else:
        fields = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    return {
        k: v
        for k, v in fields.items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def model_quantities(model: nn.Module) -> dict[str, float]:
    """The numeric quantities of ``model`` a preset or a policy expression may use.

    Args:
        model: any ``nn.Module`` (a meta-built one works: only attributes and shapes are read).

    Returns:
        ``{name: number}``: every int/float field of ``model.config`` (bools left out), plus
        ``n_layer`` (the config's number of layers, else the longest ``nn.ModuleList``'s length,
        0 when there is none), ``n_params`` (parameter elements, tied ones once) and, where the
        config has a hidden size, ``width``.

    Example:
        >>> m = nn.Sequential(nn.ModuleList([nn.Linear(2, 2)] * 3), nn.Linear(2, 1))
        >>> model_quantities(m)
        {'n_layer': 3, 'n_params': 9}
    """
    config = model_config(model)
    out = _numbers(config) if config is not None else {}
    for field in _LAYER_FIELDS:
        value = getattr(config, field, None) if config is not None else None
        if isinstance(value, int) and not isinstance(value, bool):
            out["n_layer"] = value
            break
    else:
        lists = [len(m) for m in model.modules() if isinstance(m, nn.ModuleList)]
        out["n_layer"] = max(lists, default=0)
    out["n_params"] = sum(p.numel() for p in model.parameters())
    for field in _WIDTH_FIELDS:
        if field in out:
            out.setdefault("width", out[field])
            break
    return out
