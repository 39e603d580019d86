"""Ready-made policies, shipped by name: ``get_preset("gpt2", n_layers=12)``.

Names are written lower case with underscores (``torch_default``); hyphens are accepted too
(:func:`initlab.syntax.canonical_name`). The spec ``"gpt2:n_layers=12"`` is read by
:func:`initlab.specs.load_policy`. Every preset leaves unmatched parameters alone
(``unmatched="leave"``) and has a name and a description. Module types are written as
strings (``"torch.nn.Linear"``, the family bases ``torch.nn.modules.conv._ConvNd`` for every
Conv/ConvTranspose, ``..._BatchNorm`` for every BatchNorm, ``..._NormBase`` for BatchNorm and
InstanceNorm), so subclasses match too.

The family presets (``lecun``, ``kaiming``, ``xavier``) share one layout, in priority order:

1. **Recurrent layers** (RNN/LSTM/GRU and cells): input weights ``weight_ih*`` and projections
   ``weight_hr*`` xavier_uniform, recurrent weights ``weight_hh*`` orthogonal, both block by
   block (one gate at a time, from the layer-aware fans), biases zero. This is Keras' default
   for recurrent layers (glorot_uniform kernel, orthogonal recurrent kernel, zero bias); the
   family's own rule is not used because RNN gates are tanh/sigmoid, not ReLU/SELU.
2. **Embedding / EmbeddingBag** weights ``torch_default``, i.e. N(0, 1) with the padding row
   zero. A lookup selects one row, it sums no fan_in inputs, so fan-based variance (which would
   give 1/num_embeddings) does not apply; N(0, 1) is torch's choice. For Flax's
   ``variance_scaling(1, fan_in, out_axis=0)`` (std 1/sqrt(embedding_dim)) add a rule first:
   ``Rule({"name": "variance_scaling", "mode": "fan_out", "distribution": "normal"},
   module="Embedding", param="weight")``.
3. **Norm layers** (role norm_scale/norm_shift: BatchNorm, InstanceNorm, LayerNorm, GroupNorm,
   RMSNorm, and any library's *RMSNorm/*LayerNorm with a 1-D weight): weight 1, bias 0.
4. **Every other weight** (a parameter whose name ends in ``weight``, 2 to 5 dimensions:
   Linear, Bilinear, Conv*, MultiheadAttention's packed q/k/v per block...): the family scheme.
5. **Every other bias** (name ends in ``bias``, 1-D): zero.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

from torch import nn

from ..syntax import canonical_name, did_you_mean
from .errors import PolicyError
from .policy import Policy
from .rules import Rule

__all__ = ["DEPRECATED_PRESETS", "get_preset", "list_presets", "preset_info", "register_preset"]

PresetFn = Callable[..., Policy]
_PRESETS: dict[str, PresetFn] = {}

LINEAR = "torch.nn.Linear"
CONV = "torch.nn.modules.conv._ConvNd"
BATCHNORM = "torch.nn.modules.batchnorm._BatchNorm"
NORMS = (
    "torch.nn.modules.batchnorm._NormBase",
    "torch.nn.LayerNorm",
    "torch.nn.GroupNorm",
    "torch.nn.RMSNorm",
)
RNNS = ("torch.nn.modules.rnn.RNNBase", "torch.nn.modules.rnn.RNNCellBase")
EMBEDDINGS = ("torch.nn.Embedding", "torch.nn.EmbeddingBag")


_SOURCES: dict[str, str] = {}

#: old preset names, accepted for one release with a DeprecationWarning: old -> new
DEPRECATED_PRESETS: dict[str, str] = {
    "seeds_xavier_kaiming": "linear_xavier_conv_kaiming",
    "seeds_orthogonal": "orthogonal_weights",
}


def register_preset(name: str, source: str = "-") -> Callable[[PresetFn], PresetFn]:
    """Decorator registering a function ``(**kwargs) -> Policy`` as preset ``name``.

    Args:
        name: the preset's name (stored as :func:`~initlab.syntax.canonical_name` gives it).
        source: where the recipe comes from (a paper, a library's code), for listings.

    Returns:
        The decorator; it returns the function unchanged.

    Example:
        >>> from initlab.policy import Policy, Rule
        >>> @register_preset("all_zeros", source="-")
        ... def all_zeros():
        ...     '''Every parameter 0.'''
        ...     from initlab.policy import Policy, Rule  # still callable after the doctest
        ...     return Policy(rules=(Rule("zeros"),), name="all_zeros", description="all 0")
        >>> get_preset("all-zeros").rules[0].scheme.name
        'zeros'
        >>> _ = _PRESETS.pop("all_zeros"), _SOURCES.pop("all_zeros")  # keep the registry clean
    """

    def deco(fn: PresetFn) -> PresetFn:
        _PRESETS[canonical_name(name)] = fn
        _SOURCES[canonical_name(name)] = source
        return fn

    return deco


def list_presets() -> list[str]:
    """The names of the presets, sorted (deprecated aliases are not listed).

    Example:
        >>> "torch_default" in list_presets()
        True
    """
    return sorted(_PRESETS)


def _lookup(name: Any) -> str:
    """The canonical name of preset ``name``; a deprecated alias warns and gives its new name."""
    key = canonical_name(name) if isinstance(name, str) else None
    if key in DEPRECATED_PRESETS:
        new = DEPRECATED_PRESETS[key]
        warnings.warn(
            f"preset {name!r} is deprecated and will be removed in the next release; use {new!r}",
            DeprecationWarning,
            stacklevel=3,
        )
        key = new
    if key not in _PRESETS:
        names = list_presets()
        hint = did_you_mean(key, names) if key else ""
        raise PolicyError(f"unknown preset {name!r}{hint}; known presets: {', '.join(names)}")
    return key


def get_preset(name: str, *, model: nn.Module | None = None, **kwargs: Any) -> Policy:
    """The preset policy ``name`` built with ``kwargs`` (e.g. ``get_preset("gpt2", n_layers=12)``).

    A preset whose function takes a keyword ``model`` (the family presets of
    :mod:`initlab.policy.families`) receives the model being planned, and reads its quantities
    (config fields, number of layers) from it; other presets ignore ``model``.

    Args:
        name: a preset name (``-`` or ``_``, any case) or a deprecated alias (warns).
        model: the model the policy is for, or None.
        kwargs: the preset's arguments.

    Returns:
        The policy.

    Raises:
        PolicyError: an unknown preset or argument, or a missing required argument.

    Example:
        >>> get_preset("torch-default").name
        'torch_default'
    """
    key = _lookup(name)
    fn = _PRESETS[key]
    allowed = _arguments(fn)
    for k in kwargs:
        if k not in allowed:
            raise PolicyError(
                f"unknown argument {k!r} for preset {key!r}{did_you_mean(k, allowed)}; "
                f"its arguments are: {', '.join(allowed) or '(none)'}",
                k,
            )
    if "model" in inspect.signature(fn).parameters:
        kwargs["model"] = model
    return fn(**kwargs)


def _arguments(fn: PresetFn) -> list[str]:
    """The user-facing arguments of a preset (``model`` is passed by initlab, not the user)."""
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name != "model"]


def preset_info(name: str) -> dict[str, Any]:
    """What a preset does, without building it: for listings such as ``initlab presets``.

    Args:
        name: a preset name.

    Returns:
        ``{"name", "summary", "source", "arguments"}``: the canonical name, the first line of
        its docstring, its source and its argument names.

    Example:
        >>> preset_info("kaiming")["source"]
        'He et al. 2015, https://arxiv.org/abs/1502.01852'
    """
    key = _lookup(name)
    fn = _PRESETS[key]
    summary = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
    return {"name": key, "summary": summary, "source": _SOURCES[key], "arguments": _arguments(fn)}


# -- presets -------------------------------------------------------------------------------
@register_preset("torch_default", source="PyTorch layers' reset_parameters")
def torch_default() -> Policy:
    """Every parameter as its torch layer's ``reset_parameters`` initialises it.

    Source: the PyTorch layers' own ``reset_parameters``; replays them bit for bit.
    """
    return Policy(
        rules=(Rule("torch_default", id="torch_default"),),
        name="torch_default",
        description="every parameter as its torch layer's reset_parameters initialises it",
    )


@register_preset(
    "linear_xavier_conv_kaiming",
    source="PyTorch tutorials' weights_init; torchvision ResNet.__init__",
)
def linear_xavier_conv_kaiming() -> Policy:
    """Linear xavier_normal, Conv kaiming_normal(fan_out, relu), BatchNorm 1/0, biases 0.

    The common PyTorch-tutorial ``weights_init`` recipe: Linear weight xavier_normal, bias 0;
    Conv*/ConvTranspose* weight kaiming_normal(mode="fan_out", nonlinearity="relu"), bias 0;
    BatchNorm* weight 1, bias 0. Formerly ``seeds-xavier-kaiming`` (deprecated alias).

    Source: the ``weights_init`` function applied with ``model.apply`` in PyTorch tutorials
    and in torchvision's ResNet ``__init__`` (``kaiming_normal_(m.weight, mode="fan_out",
    nonlinearity="relu")`` for convs, ``constant_`` 1/0 for BatchNorm).
    """
    kaiming = {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"}
    return Policy(
        rules=(
            Rule("xavier_normal", module=LINEAR, param="weight", id="linear-weight"),
            Rule("zeros", module=LINEAR, param="bias", id="linear-bias"),
            Rule(kaiming, module=CONV, param="weight", id="conv-weight"),
            Rule("zeros", module=CONV, param="bias", id="conv-bias"),
            Rule("ones", module=BATCHNORM, param="weight", id="batchnorm-weight"),
            Rule("zeros", module=BATCHNORM, param="bias", id="batchnorm-bias"),
        ),
        name="linear_xavier_conv_kaiming",
        description=(
            "tutorial weights_init: Linear xavier_normal, Conv kaiming_normal(fan_out, relu), "
            "BatchNorm 1/0, biases 0"
        ),
    )


@register_preset("orthogonal_weights", source="Saxe et al. 2013, https://arxiv.org/abs/1312.6120")
def orthogonal_weights() -> Policy:
    """Orthogonal weights (Linear gain 1, Conv gain sqrt(2)), Linear and Conv biases 0.

    Saxe et al. 2013: Linear gain 1, Conv*/ConvTranspose* gain
    ``calculate_gain("relu") = sqrt(2)``. Formerly ``seeds-orthogonal`` (deprecated alias).

    Source: ``torch.nn.init.orthogonal_`` as applied in common ``weights_init`` recipes.
    """
    gain = math.sqrt(2.0)
    return Policy(
        rules=(
            Rule("orthogonal", module=LINEAR, param="weight", id="linear-weight"),
            Rule(
                {"name": "orthogonal", "gain": gain}, module=CONV, param="weight", id="conv-weight"
            ),
            Rule("zeros", module=(LINEAR, CONV), param="bias", id="bias"),
        ),
        name="orthogonal_weights",
        description="orthogonal weights (convs with gain sqrt(2)), biases 0",
    )


def _family(name: str, weight: Any, description: str) -> Policy:
    return Policy(
        rules=(
            Rule("xavier_uniform", module=RNNS, param="weight_ih*", id="rnn-input-weight"),
            Rule("orthogonal", module=RNNS, param="weight_hh*", id="rnn-recurrent-weight"),
            Rule("xavier_uniform", module=RNNS, param="weight_hr*", id="rnn-projection"),
            Rule("zeros", module=RNNS, param="bias_*", id="rnn-bias"),
            Rule("torch_default", module=EMBEDDINGS, param="weight", id="embedding"),
            Rule("ones", role="norm_scale", id="norm-weight"),
            Rule("zeros", role="norm_shift", id="norm-bias"),
            Rule(weight, param="*weight", ndim=(2, 3, 4, 5), id="weight"),
            Rule("zeros", param="*bias", ndim=1, id="bias"),
        ),
        name=name,
        description=description,
    )


@register_preset(
    "lecun", source="LeCun et al. 1998; Klambauer et al. 2017, https://arxiv.org/abs/1706.02515"
)
def lecun() -> Policy:
    """Weights lecun_normal, biases 0, norms 1/0, recurrent layers Keras-style.

    LeCun et al. 1998 (Efficient BackProp) / Klambauer et al. 2017 (SELU). Weights
    ``lecun_normal`` (Var = 1/fan_in, truncated normal as JAX/Keras), biases 0, norms
    1/0; recurrent layers and embeddings as described in the module docstring.
    """
    return _family("lecun", "lecun_normal", "weights lecun_normal, biases 0, norms 1/0")


@register_preset("kaiming", source="He et al. 2015, https://arxiv.org/abs/1502.01852")
def kaiming() -> Policy:
    """Weights kaiming_normal(fan_in, relu), biases 0, norms 1/0, recurrent layers Keras-style.

    He et al. 2015 (Delving Deep into Rectifiers). Weights ``kaiming_normal(mode="fan_in",
    nonlinearity="relu")`` (Var = 2/fan_in), biases 0,
    norms 1/0; recurrent layers and embeddings as described in the module docstring.
    """
    scheme = {"name": "kaiming_normal", "mode": "fan_in", "nonlinearity": "relu"}
    return _family("kaiming", scheme, "weights kaiming_normal(fan_in, relu), biases 0, norms 1/0")


@register_preset(
    "xavier", source="Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html"
)
def xavier() -> Policy:
    """Weights xavier_uniform, biases 0, norms 1/0, recurrent layers Keras-style.

    Glorot & Bengio 2010 (Understanding the difficulty of training deep FNNs). Weights
    ``xavier_uniform`` (U(±sqrt(6/(fan_in+fan_out)))), biases 0, norms 1/0; recurrent
    layers and embeddings as described in the module docstring.
    """
    return _family("xavier", "xavier_uniform", "weights xavier_uniform, biases 0, norms 1/0")
