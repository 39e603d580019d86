"""Model families over width, and the two parametrisations the width experiments compare.

A *family* is a model spec with a ``{width}`` placeholder (:func:`family_template`):
``mlp:widths={width}-{width}``, ``hf:gpt2?n_embd={width}&...``. Bare ``mlp`` and ``hf:gpt2``
get the defaults of :data:`DEFAULT_FAMILIES`; any other spec names its width field with
``width_field`` (``n_embd``, ``hidden_size``...) or writes the placeholder itself.

A *parametrisation* (:data:`PARAMETRISATIONS`) says how one member of the family is initialised
and optimised (:func:`prepare`):

``sp``
    standard parametrisation: the model as its constructor initialised it (torch's defaults, or
    a Hugging Face model's own ``_init_weights``), one learning rate for every parameter.
``mup``
    maximal update parametrisation (Yang et al. 2022, "Tensor Programs V",
    https://arxiv.org/abs/2203.03466) relative to a base member (the narrowest width):
    :func:`initlab.mup` gives the init policy, per-parameter learning-rate multipliers
    (:func:`initlab.mup_param_groups`) and the readout multipliers and attention 1/d scale that
    ``attach`` installs as removable hooks. At the base width muP is SP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..execute import initialize, meta_build
from ..mup import mup, mup_param_groups
from ..specs import build_model
from .data.text import VOCAB_SIZE

__all__ = [
    "DEFAULT_FAMILIES",
    "OPTIMIZERS",
    "PARAMETRISATIONS",
    "Prepared",
    "WidthError",
    "build_member",
    "family_template",
    "group_optimizer",
    "is_language_model",
    "parse_widths",
    "prepare",
]

PARAMETRISATIONS = ("sp", "mup")
OPTIMIZERS = ("adam", "adamw", "sgd")

#: bare specs -> their family; GPT-2 is built untied (a readout of its own), without dropout
DEFAULT_FAMILIES: dict[str, str] = {
    "mlp": "mlp:widths={width}-{width}",
    "hf:gpt2": (
        "hf:gpt2?n_embd={width}&n_layer=2&n_head=4&n_positions=64"
        f"&vocab_size={VOCAB_SIZE}"
        "&tie_word_embeddings=false&resid_pdrop=0.0&embd_pdrop=0.0&attn_pdrop=0.0"
        "&bos_token_id=0&eos_token_id=0"
    ),
}


class WidthError(ValueError):
    """A model spec without a width, bad widths, or a model a width experiment cannot run.

    Example:
        >>> family_template("cnn")
        Traceback (most recent call last):
        ...
        initlab.lab.width.WidthError: model spec 'cnn' has no width: write {width} where it ...
    """


def family_template(spec: str, width_field: str | None = None) -> str:
    """The spec of a model family, with a ``{width}`` placeholder.

    Args:
        spec: a model spec with ``{width}`` in it, or a bare key of :data:`DEFAULT_FAMILIES`,
            or any spec together with ``width_field``.
        width_field: the option that sets the width (``n_embd``, ``hidden_size``, ``width``);
            appended as ``field={width}`` with the spec's own separator.

    Returns:
        The template.

    Raises:
        WidthError: no placeholder, no default and no width field.

    Example:
        >>> family_template("mlp")
        'mlp:widths={width}-{width}'
        >>> family_template("hf:llama?num_hidden_layers=2", "hidden_size")
        'hf:llama?num_hidden_layers=2&hidden_size={width}'
        >>> family_template("deep:depth=3", "width")
        'deep:depth=3,width={width}'
    """
    spec = spec.strip()
    if width_field is not None:
        if "{width}" in spec:
            raise WidthError(f"model spec {spec!r} has {{width}} already; drop --width-field")
        if spec.lower().startswith("hf:"):
            sep = "&" if "?" in spec else "?"
        else:
            sep = "," if ":" in spec else ":"
        return f"{spec}{sep}{width_field}={{width}}"
    if "{width}" in spec:
        return spec
    default = DEFAULT_FAMILIES.get(spec.lower())
    if default is None:
        raise WidthError(
            f"model spec {spec!r} has no width: write {{width}} where it goes (e.g. "
            f"'mlp:widths={{width}}-{{width}}') or pass --width-field NAME"
        )
    return default


def parse_widths(text: str | Sequence[int]) -> list[int]:
    """``"64,128,256"`` -> ``[64, 128, 256]``: at least two distinct positive widths, ascending.

    Args:
        text: comma-separated integers, or a sequence of them.

    Returns:
        The widths.

    Raises:
        WidthError: not integers, not positive, fewer than two, or repeated.

    Example:
        >>> parse_widths("256, 64,128")
        [64, 128, 256]
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        widths = [int(str(w).strip()) for w in items if str(w).strip()]
    except ValueError:
        raise WidthError(
            f"widths must be integers joined by ',' (e.g. 64,128,256), got {text!r}"
        ) from None
    if any(w < 1 for w in widths):
        raise WidthError(f"widths must be positive, got {text!r}")
    if len(set(widths)) != len(widths) or len(widths) < 2:
        raise WidthError(f"give at least two different widths (e.g. 64,128,256), got {text!r}")
    return sorted(widths)


def build_member(
    template: str,
    width: int,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    *,
    seed: int | None = None,
    meta: bool = False,
) -> nn.Module:
    """The family's model at ``width``, built under ``torch.manual_seed(seed)`` (caller's RNG kept).

    Args:
        template: a :func:`family_template` result.
        width: the width.
        input_shape, num_classes: for zoo models (the data set's).
        seed: seeds the constructor's own init (None: the current global RNG).
        meta: build on the meta device (no storage; for a muP base model).

    Returns:
        The model.

    Example:
        >>> build_member("mlp:widths={width}-{width}", 32, (8,), 3, seed=0).fc2
        Linear(in_features=32, out_features=32, bias=True)
    """
    spec = template.replace("{width}", str(int(width)))
    if meta:
        with meta_build():
            return build_model(spec, input_shape, num_classes)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return build_model(spec, input_shape, num_classes)


def is_language_model(model: nn.Module) -> bool:
    """A Hugging Face model with a token vocabulary (trained on next-token prediction).

    Args:
        model: a model.

    Returns:
        True when ``model.config.vocab_size`` exists.

    Example:
        >>> is_language_model(nn.Linear(2, 2))
        False
    """
    return getattr(getattr(model, "config", None), "vocab_size", None) is not None


@dataclasses.dataclass
class Prepared:
    """One family member ready to train under a parametrisation.

    Attributes:
        param_groups: torch param groups (``lr`` already multiplied per parameter).
        lr_mults: parameter name -> its learning-rate multiplier (1 under SP).
        readouts: module name -> output multiplier applied by the hooks (empty under SP).
        handle: the hooks' handle (``remove()``), or None.
        notes: what the parametrisation could and could not do on this model.

    Example:
        >>> m = nn.Linear(2, 2)
        >>> p = prepare(m, "sp", lr=0.1)
        >>> p.lr_mults, p.readouts
        ({'weight': 1.0, 'bias': 1.0}, {})
    """

    param_groups: list[dict[str, Any]]
    lr_mults: dict[str, float]
    readouts: dict[str, float]
    handle: Any
    notes: list[str]

    def remove(self) -> None:
        """Remove the hooks (the model is plain SP-shaped again)."""
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def group_optimizer(name: str, param_groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (no momentum, as microsoft/mup's coordinate check) over
    the groups.

    Args:
        name: the optimizer.
        param_groups: torch param groups, each with its ``lr``.

    Returns:
        The optimizer.

    Example:
        >>> p = nn.Parameter(torch.zeros(2))
        >>> type(group_optimizer("sgd", [{"params": [p], "lr": 0.1}])).__name__
        'SGD'
    """
    if name not in OPTIMIZERS:
        raise WidthError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    lr = param_groups[0]["lr"] if param_groups else 1e-3
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(param_groups, lr=lr)


def prepare(
    model: nn.Module,
    parametrisation: str,
    *,
    lr: float,
    optimizer: str = "adam",
    base: nn.Module | None = None,
    seed: int = 0,
) -> Prepared:
    """Initialise (muP) and group ``model``'s parameters for ``parametrisation``.

    Under ``sp`` the model is left as built. Under ``mup`` it is re-initialised with
    ``initlab.mup(model, base).policy`` (keyed by ``seed``), its readout multipliers and
    attention scale are attached, and the groups carry muP's per-parameter learning rates for
    the optimizer (Adam's rule for ``adam``/``adamw``, SGD's for ``sgd``).

    Args:
        model: the family member (trainable, not on meta).
        parametrisation: ``"sp"`` or ``"mup"``.
        lr: the global learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        base: the base member (required for ``mup``; may be on meta).
        seed: the init seed under muP.

    Returns:
        The :class:`Prepared` groups, multipliers and hooks.

    Raises:
        WidthError: an unknown parametrisation or optimizer, or ``mup`` without ``base``.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> prepare(m, "sp", lr=0.1).lr_mults["2.weight"]
        1.0
    """
    if optimizer not in OPTIMIZERS:
        raise WidthError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    names = {id(p): n for n, p in model.named_parameters()}
    if parametrisation == "sp":
        params = [p for p in model.parameters() if p.requires_grad]
        return Prepared(
            [{"params": params, "lr": lr}], {names[id(p)]: 1.0 for p in params}, {}, None, []
        )
    if parametrisation != "mup":
        raise WidthError(
            f"parametrisation must be one of {', '.join(PARAMETRISATIONS)}, got {parametrisation!r}"
        )
    if base is None:
        raise WidthError("mup needs a base model (the family at its base width)")
    rule = "sgd" if optimizer == "sgd" else "adam"
    m = mup(model, base, optimizer=rule)
    initialize(model, m.policy, seed)
    groups = mup_param_groups(model, m, lr, optimizer=rule)
    mults = {names[id(p)]: g["lr"] / lr for g in groups for p in g["params"]}
    module_names = {id(mod): n for n, mod in model.named_modules()}
    readouts = {
        (k if isinstance(k, str) else module_names.get(id(k), repr(k))): float(v)
        for k, v in m.readouts.items()
    }
    handle = m.attach(model)
    return Prepared(groups, mults, readouts, handle, [str(n) for n in m.notes])
