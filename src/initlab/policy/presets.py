"""Ready-made policies, shipped by name: ``get_preset("gpt2", n_layers=12)``.

Every preset leaves unmatched parameters alone (``unmatched="leave"``) and has a name and a
description. Module types are written as strings (``"torch.nn.Linear"``, the family bases
``torch.nn.modules.conv._ConvNd`` for every Conv/ConvTranspose, ``..._BatchNorm`` for every
BatchNorm, ``..._NormBase`` for BatchNorm and InstanceNorm), so subclasses match too.

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
3. **Norm layers** (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm): weight 1, bias 0.
4. **Every other weight** (a parameter whose name ends in ``weight``, 2 to 5 dimensions:
   Linear, Bilinear, Conv*, MultiheadAttention's packed q/k/v per block...): the family scheme.
5. **Every other bias** (name ends in ``bias``, 1-D): zero.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from .policy import Policy
from .rules import PolicyError, Rule, at, compile_pattern, did_you_mean

__all__ = ["get_preset", "get_preset_spec", "list_presets", "register_preset"]

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


def register_preset(name: str) -> Callable[[PresetFn], PresetFn]:
    """Decorator registering a function ``(**kwargs) -> Policy`` as preset ``name``."""

    def deco(fn: PresetFn) -> PresetFn:
        _PRESETS[_key(name)] = fn
        return fn

    return deco


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def list_presets() -> list[str]:
    """The names of the presets, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str, **kwargs: Any) -> Policy:
    """The preset policy ``name`` built with ``kwargs`` (e.g. ``get_preset("gpt2", n_layers=12)``).

    Raises PolicyError for an unknown preset or argument, or a missing required argument.
    """
    if not isinstance(name, str) or _key(name) not in _PRESETS:
        names = list_presets()
        hint = did_you_mean(_key(name), names) if isinstance(name, str) else ""
        raise PolicyError(
            f"unknown preset {name!r}{hint}; known presets: {', '.join(names)} (a policy file "
            f"needs a path ending in .yaml, .yml, .toml or .json)"
        )
    fn = _PRESETS[_key(name)]
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY]
    allowed = [p.name for p in params]
    for k in kwargs:
        if k not in allowed:
            raise PolicyError(
                f"unknown argument {k!r} for preset {_key(name)!r}{did_you_mean(k, allowed)}; "
                f"its arguments are: {', '.join(allowed) or '(none)'}",
                k,
            )
    return fn(**kwargs)


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def get_preset_spec(spec: str) -> Policy:
    """A preset from ``"name"`` or ``"name:key=value,key=value"`` (``"gpt2:n_layers=12"``).

    Values are read as int, float, true/false, none, else string; values containing commas
    (some regexes) cannot be written here: call :func:`get_preset` instead.
    """
    name, _, args = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise PolicyError(
                f"bad preset argument {item!r} in {spec!r}; write name:key=value,key=value "
                f"(e.g. 'gpt2:n_layers=12')"
            )
        kwargs[key.strip()] = _parse_value(value)
    return get_preset(name, **kwargs)


# -- presets -------------------------------------------------------------------------------
@register_preset("torch-default")
def torch_default() -> Policy:
    """Every parameter as its layer's ``reset_parameters`` initialises it (``torch_default``).

    Source: the PyTorch layers' own ``reset_parameters``; replays them bit for bit.
    """
    return Policy(
        rules=(Rule("torch_default", id="torch-default"),),
        name="torch-default",
        description="every parameter as its torch layer's reset_parameters initialises it",
    )


@register_preset("seeds-xavier-kaiming")
def seeds_xavier_kaiming() -> Policy:
    """The common PyTorch-tutorial ``weights_init`` recipe.

    Linear weight xavier_normal, bias 0; Conv*/ConvTranspose* weight
    kaiming_normal(mode="fan_out", nonlinearity="relu"), bias 0; BatchNorm* weight 1, bias 0.

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
        name="seeds-xavier-kaiming",
        description=(
            "tutorial weights_init: Linear xavier_normal, Conv kaiming_normal(fan_out, relu), "
            "BatchNorm 1/0, biases 0"
        ),
    )


@register_preset("seeds-orthogonal")
def seeds_orthogonal() -> Policy:
    """Orthogonal weights (Saxe et al. 2013): Linear gain 1, Conv*/ConvTranspose* gain
    ``calculate_gain("relu") = sqrt(2)``; Linear and conv biases 0.

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
        name="seeds-orthogonal",
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
            Rule("ones", module=NORMS, param="weight", id="norm-weight"),
            Rule("zeros", module=NORMS, param="bias", id="norm-bias"),
            Rule(weight, param="*weight", ndim=(2, 3, 4, 5), id="weight"),
            Rule("zeros", param="*bias", ndim=1, id="bias"),
        ),
        name=name,
        description=description,
    )


@register_preset("lecun")
def lecun() -> Policy:
    """LeCun et al. 1998 (Efficient BackProp) / Klambauer et al. 2017 (SELU).

    Weights ``lecun_normal`` (Var = 1/fan_in, truncated normal as JAX/Keras), biases 0, norms
    1/0; recurrent layers and embeddings as described in the module docstring.
    """
    return _family("lecun", "lecun_normal", "weights lecun_normal, biases 0, norms 1/0")


@register_preset("kaiming")
def kaiming() -> Policy:
    """He et al. 2015 (Delving Deep into Rectifiers).

    Weights ``kaiming_normal(mode="fan_in", nonlinearity="relu")`` (Var = 2/fan_in), biases 0,
    norms 1/0; recurrent layers and embeddings as described in the module docstring.
    """
    scheme = {"name": "kaiming_normal", "mode": "fan_in", "nonlinearity": "relu"}
    return _family("kaiming", scheme, "weights kaiming_normal(fan_in, relu), biases 0, norms 1/0")


@register_preset("xavier")
def xavier() -> Policy:
    """Glorot & Bengio 2010 (Understanding the difficulty of training deep FNNs).

    Weights ``xavier_uniform`` (U(±sqrt(6/(fan_in+fan_out)))), biases 0, norms 1/0; recurrent
    layers and embeddings as described in the module docstring.
    """
    return _family("xavier", "xavier_uniform", "weights xavier_uniform, biases 0, norms 1/0")


#: module names of GPT-2-style residual output projections (GPT-2/nanoGPT ``c_proj``,
#: MultiheadAttention ``out_proj``, MLP ``fc2`` and TransformerEncoderLayer ``linear2``)
GPT2_RESIDUAL = ("*c_proj", "*out_proj", r"re:(.*\.)?fc2", r"re:(.*\.)?linear2")


@register_preset("gpt2")
def gpt2(
    *,
    n_layers: int | None = None,
    std: float = 0.02,
    residual: str | tuple[str, ...] | list[str] = GPT2_RESIDUAL,
) -> Policy:
    """GPT-2 (Radford et al. 2019) as in OpenAI's GPT-2 code, HF transformers and nanoGPT.

    * residual output projections: weight N(0, (std/sqrt(2·n_layers))²), two residual
      additions per layer. ``residual`` is the module-name patterns that select them, by
      default ``*c_proj``, ``*out_proj``, ``fc2`` and ``linear2`` at any depth (see
      :data:`GPT2_RESIDUAL`); pass your own (a pattern or a list) for other naming;
    * Linear (and HF's ``Conv1D``), Embedding and MultiheadAttention q/k/v projection weights:
      N(0, std²), std = 0.02;
    * biases (Linear, Conv1D, MultiheadAttention) 0; LayerNorm (and RMSNorm) weight 1, bias 0.

    Args:
        n_layers: the number of transformer layers (required), e.g. 12 for GPT-2 small.
        std: the base standard deviation (GPT-2's ``initializer_range``).
        residual: module-name patterns (globs or ``re:``) of the residual projections.
    """
    if n_layers is None:
        raise PolicyError(
            "the gpt2 preset needs the number of transformer layers: pass n_layers, e.g. "
            "get_preset('gpt2', n_layers=12) or 'gpt2:n_layers=12'",
            "n_layers",
        )
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
        raise PolicyError(f"must be an int >= 1, got {n_layers!r}", "n_layers")
    if not isinstance(std, (int, float)) or isinstance(std, bool) or not std > 0:
        raise PolicyError(f"must be a positive number, got {std!r}", "std")
    patterns = (residual,) if isinstance(residual, str) else residual
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise PolicyError(f"expected a pattern or a list of patterns, got {residual!r}", "residual")
    for i, p in enumerate(patterns):
        with at("residual" if isinstance(residual, str) else f"residual[{i}]"):
            compile_pattern(p)
    scaled = {"name": "normal", "std": std / math.sqrt(2 * n_layers)}
    base = {"name": "normal", "std": float(std)}
    linear = (LINEAR, "Conv1D")
    mha = "torch.nn.MultiheadAttention"
    rules = [
        Rule(scaled, name=p, param="weight", id=f"residual-proj[{i}]")
        for i, p in enumerate(patterns)
    ]
    rules += [
        Rule(base, module=linear, param="weight", id="linear-weight"),
        Rule(base, module=EMBEDDINGS, param="weight", id="embedding"),
        Rule(base, module=mha, param="*_proj_weight", id="attention-in-proj"),
        Rule("zeros", module=(*linear, mha), param="*bias", id="bias"),
        Rule(
            "ones",
            module=("torch.nn.LayerNorm", "torch.nn.RMSNorm"),
            param="weight",
            id="norm-weight",
        ),
        Rule("zeros", module="torch.nn.LayerNorm", param="bias", id="norm-bias"),
    ]
    return Policy(
        rules=tuple(rules),
        name="gpt2",
        description=(
            f"GPT-2: N(0, {std}²) weights, residual projections N(0, ({std}/sqrt(2·{n_layers}))²), "
            f"biases 0, LayerNorm 1/0"
        ),
    )
