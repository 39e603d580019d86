"""The one grammar: strings -> schemes, policies and models.

Every string a user types for a scheme, a policy or a model (in Python, on the command line,
in a policy file, as a lab entry) is resolved here. Its written form, ``name:key=value,...``,
is split by :mod:`initlab.syntax` (which the lower layers, e.g. a rule's scheme, use too)::

    "mlp"                             -> ("mlp", {})
    "mlp:widths=512-256,dropout=0.1"  -> ("mlp", {"widths": "512-256", "dropout": 0.1})
    "mnist:/data/mnist"               -> ("mnist", {"path": "/data/mnist"})
    "mnist:/data/mnist,foo=1"         -> ("mnist", {"path": "/data/mnist", "foo": 1})

Values are parsed, in this order, as ``int`` (``256``), ``float`` (``0.1``, ``1e-3``), ``bool``
(``true``/``false``, any case), ``None`` (``none``/``null``, any case) or else kept as ``str``.
The value of the ``path`` key always stays a string. A first item without ``=`` is the
positional ``path``; when nothing after the colon contains ``=``, all of it is the path (so a
path may contain commas). Keys are Python identifiers; whitespace around items is ignored.
Names are compared case-insensitively with ``-`` and ``_`` interchangeable and shown with
underscores (:func:`initlab.syntax.canonical_name`).

What a string means:

* a **policy** (:func:`load_policy`): a policy file (``.yaml``/``.yml``/``.toml``/``.json``, or
  any existing file), else a preset (``gpt2:n_layers=12``), else a scheme
  (``kaiming_normal:nonlinearity=relu``), which is the one-rule policy "every parameter with
  this scheme" (:func:`scheme_policy`). A preset wins over a scheme of the same name
  (``torch_default``).
* a **scheme** (:func:`resolve_scheme`): ``name:param=value,...``.
* a **model** (:func:`build_model`), dispatched on the part before the first ``:``: a built-in
  of the zoo (``mlp``, ``cnn:batchnorm=true``; :mod:`initlab.zoo`), a prefix registered with
  :func:`register_model_source` (``hf:gpt2?n_layer=2`` style sources), else a reference to a
  factory, ``package.module:factory`` or ``path/to/file.py:factory`` (:mod:`initlab.refs`).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .policy.errors import PolicyError
from .policy.files import FORMATS, read_policy_file
from .policy.policy import Policy
from .policy.presets import DEPRECATED_PRESETS, get_preset, list_presets
from .policy.rules import Rule, as_scheme
from .refs import RefError, is_file_ref, load_ref
from .schemes import Scheme, aliases, list_schemes
from .sources.hf import build_hf_model
from .sources.timm import build_timm
from .sources.torchvision import build_torchvision
from .syntax import SpecError, canonical_name, did_you_mean, format_spec, parse_spec
from .zoo import MODELS, ModelError, build_zoo_model

__all__ = [
    "build_model",
    "load_policy",
    "model_sources",
    "register_model_source",
    "resolve_scheme",
    "scheme_policy",
]


# -- schemes and policies ------------------------------------------------------------------
def _known_schemes() -> list[str]:
    return sorted({c.name for c in list_schemes()} | set(aliases()))


def resolve_scheme(spec: str | Scheme | Mapping[str, Any]) -> Scheme:
    """The scheme a spec names: ``"kaiming_normal:mode=fan_out,nonlinearity=relu"``.

    Args:
        spec: a spec string, a Scheme (returned) or a config mapping (``{"name": ...}``).

    Returns:
        The scheme.

    Raises:
        PolicyError: a malformed spec, an unknown scheme or parameter, or an invalid value.

    Example:
        >>> resolve_scheme("Kaiming-Normal:nonlinearity=relu").to_config()["nonlinearity"]
        'relu'
    """
    return as_scheme(spec)


def scheme_policy(scheme: str | Scheme | Mapping[str, Any]) -> Policy:
    """The one-rule policy "every parameter with ``scheme``", named by the scheme's spec.

    Parameters the scheme cannot fill (a fan-based scheme on a layer without fans) are
    reported by :func:`initlab.plan`, as for any rule.

    Args:
        scheme: a scheme spec string, a Scheme or a config mapping.

    Returns:
        A policy of one rule, ``id`` ``"all"``.

    Example:
        >>> p = scheme_policy("xavier_uniform:gain=2")
        >>> p.name, len(p.rules)
        ('xavier_uniform:gain=2.0', 1)
    """
    s = resolve_scheme(scheme)
    config = s.to_config()
    name = config.pop("name")
    defaults = {
        f.name: f.default for f in dataclasses.fields(s) if f.default is not dataclasses.MISSING
    }
    changed = {k: v for k, v in config.items() if k not in defaults or defaults[k] != v}
    try:
        label = format_spec(name, changed)
    except SpecError:
        label = name
    return Policy(rules=(Rule(s, id="all"),), name=label, description=f"every parameter {label}")


def _is_policy_file(text: str) -> bool:
    path = Path(text)
    return path.suffix.lower() in FORMATS or path.is_file()


PolicySource = Policy | Mapping[str, Any] | str | os.PathLike[str]


def load_policy(source: PolicySource, *, model: nn.Module | None = None) -> Policy:
    """A policy from a Policy (returned), a mapping, a policy file, a preset or a scheme.

    Args:
        source: a :class:`~initlab.Policy`; a mapping in the file schema; the path of a
            ``.yaml``/``.yml``/``.toml``/``.json`` file; a preset, optionally with arguments
            (``"gpt2:n_layers=12,std=0.02"``); or a scheme spec
            (``"kaiming_normal:nonlinearity=relu"``), the one-rule policy
            :func:`scheme_policy`.
        model: the model the policy is for; a family preset reads its quantities
            (``load_policy("gpt2", model=m)`` takes ``n_layers`` from ``m.config``).

    Returns:
        The policy.

    Raises:
        PolicyError: with the file, the line and the key path where there are some, and the
            fix.

    Example:
        >>> load_policy("gpt2:n_layers=2").name, load_policy("xavier_uniform").name
        ('gpt2', 'xavier_uniform')
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return Policy.from_dict(source)
    if isinstance(source, os.PathLike):
        return read_policy_file(source)
    if not isinstance(source, str):
        raise PolicyError(
            f"expected a Policy, a mapping, a policy file, a preset or a scheme, got "
            f"{type(source).__name__}"
        )
    if _is_policy_file(source):
        return read_policy_file(source)
    try:
        name, params = parse_spec(source)
    except SpecError as e:
        raise PolicyError(str(e)) from None
    key = canonical_name(name)
    if "path" in params:
        raise PolicyError(
            f"policy {source!r}: arguments are key=value (e.g. 'gpt2:n_layers=12'), "
            f"got {params['path']!r}"
        )
    if key in list_presets() or key in DEPRECATED_PRESETS:
        return get_preset(name, model=model, **params)
    try:
        return scheme_policy({"name": key, **params})
    except PolicyError as e:
        if not e.message.startswith("unknown scheme"):
            raise PolicyError(f"scheme {source!r}: {e.message}", e.path) from None
    known = [*list_presets(), *_known_schemes()]
    raise PolicyError(
        f"unknown policy {source!r}{did_you_mean(key, known)}: not a preset "
        f"({', '.join(list_presets())}), a scheme (see 'initlab schemes') or a policy file "
        f"({', '.join(FORMATS)})"
    )


# -- models --------------------------------------------------------------------------------
ModelSource = Callable[[str, dict[str, Any]], nn.Module]
_SOURCES: dict[str, ModelSource] = {}


def register_model_source(prefix: str, build: ModelSource) -> None:
    """Make ``prefix:rest`` model specs call ``build(rest, offered)``.

    ``offered`` holds the keywords a caller can supply (``input_shape``, ``num_classes``),
    for sources that use them.

    Args:
        prefix: the part before the first ``:`` (``"hf"``, ``"timm"``, ``"torchvision"``).
        build: returns the model; raise :class:`~initlab.zoo.ModelError` for a bad spec.

    Example:
        >>> register_model_source("tiny", lambda rest, offered: nn.Linear(int(rest), 1))
        >>> build_model("tiny:3").in_features
        3
    """
    key = canonical_name(prefix)
    if key in MODELS:
        raise ValueError(f"model source {prefix!r} would hide the built-in model {key!r}")
    _SOURCES[key] = build


def model_sources() -> list[str]:
    """The registered model-spec prefixes, sorted (built-in zoo names are not included).

    Example:
        >>> isinstance(model_sources(), list)
        True
    """
    return sorted(_SOURCES)


def _call_factory(spec: str, offered: dict[str, Any]) -> nn.Module:
    """Call the factory ``spec`` references with the ``offered`` keywords it accepts."""
    try:
        factory = load_ref(spec)
    except RefError as e:
        raise ModelError(f"model {e}") from None
    if not callable(factory):
        raise ModelError(f"model {spec!r} is not callable")
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
        raise ModelError(f"calling {spec!r} failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


def build_model(
    spec: str, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None
) -> nn.Module:
    """Build the model a spec names (dispatch in the module docstring).

    Args:
        spec: ``"mlp"``, ``"cnn:batchnorm=true"``, ``"deep:depth=50,activation=tanh"``,
            ``"pkg.models:make"``, ``"./my_model.py:make"``, or ``"<prefix>:..."`` of a
            registered source.
        input_shape: the shape of one example (a data set's ``input_shape``); the zoo's
            default is digits' ``(64,)``. Passed to a factory that takes ``input_shape``.
        num_classes: the number of outputs (zoo default 10); passed likewise.

    Returns:
        A fresh model.

    Raises:
        ModelError: an unknown model, a bad option, or a factory that cannot be loaded,
            fails, or returns no ``nn.Module`` (one line naming the spec).

    Example:
        >>> build_model("mlp:widths=32").head
        Linear(in_features=32, out_features=10, bias=True)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(f"model spec must be a non-empty string, got {spec!r}")
    head, colon, rest = spec.strip().partition(":")
    key = canonical_name(head)
    offered = {"input_shape": input_shape, "num_classes": num_classes}
    offered = {k: v for k, v in offered.items() if v is not None}
    if key in MODELS:
        try:
            _, options = parse_spec(spec)
        except SpecError as e:
            raise ModelError(str(e)) from None
        if "path" in options:
            raise ModelError(f"{key}: options are key=value, got {options['path']!r}")
        try:
            return build_zoo_model(key, input_shape, num_classes, **options)
        except ModelError as e:
            raise ModelError(f"{e} (in spec {spec!r})") from None
    if key in _SOURCES and not is_file_ref(head):
        return _SOURCES[key](rest, offered)
    if colon:
        return _call_factory(spec.strip(), offered)
    raise ModelError(
        f"unknown model {spec!r}{did_you_mean(key, list(MODELS))}; built-ins: "
        f"{', '.join(MODELS)}, or a factory 'package.module:factory' / 'path/to/file.py:factory'"
    )


register_model_source("hf", build_hf_model)
register_model_source("timm", build_timm)
register_model_source("torchvision", build_torchvision)
