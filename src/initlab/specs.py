"""The one grammar: strings -> schemes, policies and models.

Every string a user types for a scheme, a policy or a model (in Python, on the command line,
in a policy file, as a lab entry) is read here, in the form ``name:key=value,key=value``::

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
underscores (:func:`initlab.names.canonical_name`).

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
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .names import canonical_name
from .policy.files import FORMATS, read_policy_file
from .policy.policy import Policy
from .policy.presets import DEPRECATED_PRESETS, get_preset, list_presets
from .policy.rules import PolicyError, Rule, as_scheme, did_you_mean
from .refs import RefError, is_file_ref, load_ref
from .schemes import Scheme, aliases, list_schemes
from .zoo import MODELS, ModelError, build_zoo_model

__all__ = [
    "SpecError",
    "build_model",
    "format_spec",
    "load_policy",
    "model_sources",
    "parse_spec",
    "parse_value",
    "register_model_source",
    "resolve_scheme",
    "scheme_policy",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SpecError(ValueError):
    """A spec string that does not follow ``name:key=value,...`` (message names the spec)."""


# -- the grammar ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``text`` as int, float, bool (``true``/``false``), None (``none``/``null``) or else str.

    Example:
        >>> parse_value("256"), parse_value("1e-3"), parse_value("True"), parse_value("relu")
        (256, 0.001, True, 'relu')
    """
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name:key=value,..."`` into ``(name, {key: parsed value})``.

    Args:
        spec: the spec string.

    Returns:
        The name as written and the parsed options.

    Raises:
        SpecError: empty name, an item without ``=`` after the first, an empty or invalid key,
            a repeated key or an empty item.

    Example:
        >>> parse_spec("kaiming_normal:mode=fan_out,a=0.1")
        ('kaiming_normal', {'mode': 'fan_out', 'a': 0.1})
    """
    if not isinstance(spec, str):
        raise SpecError(f"spec must be a string like 'name:key=value', got {spec!r}")
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"spec {spec!r}: missing name before ':' (write 'name:key=value,...')")
    if not _NAME.fullmatch(name):
        raise SpecError(f"spec {spec!r}: invalid name {name!r}")
    kwargs: dict[str, Any] = {}
    if not colon:
        return name, kwargs
    if not rest.strip():
        raise SpecError(f"spec {spec!r}: nothing after ':' (drop the ':' or add key=value)")
    if "=" not in rest:
        return name, {"path": rest.strip()}
    for i, raw in enumerate(rest.split(",")):
        item = raw.strip()
        if not item:
            raise SpecError(f"spec {spec!r}: empty item (stray ',')")
        key, eq, value = item.partition("=")
        if not eq:
            if i == 0:
                kwargs["path"] = item
                continue
            raise SpecError(
                f"spec {spec!r}: item {item!r} is not key=value "
                "(only the first item may be a bare path)"
            )
        key, value = key.strip(), value.strip()
        if not _KEY.fullmatch(key):
            raise SpecError(f"spec {spec!r}: invalid key {key!r} in item {item!r}")
        if key in kwargs:
            raise SpecError(f"spec {spec!r}: key {key!r} given twice")
        kwargs[key] = value if key == "path" else parse_value(value)
    return name, kwargs


def _format_value(spec_name: str, key: str, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if key != "path" and not isinstance(parse_value(value), str):
            raise SpecError(
                f"spec {spec_name!r}: string value {value!r} of {key!r} would read back as "
                f"{type(parse_value(value)).__name__}"
            )
        return value
    raise SpecError(
        f"spec {spec_name!r}: value of {key!r} must be int, float, bool, None or str, "
        f"got {type(value).__name__}"
    )


def format_spec(name: str, kwargs: Mapping[str, Any] | None = None) -> str:
    """The canonical spec string for ``name`` and ``kwargs``; :func:`parse_spec` reads it back.

    ``path`` comes first (bare), then the other keys in sorted order, so equal options always
    give the same string (run ids depend on it).

    Args:
        name: the name, written as given.
        kwargs: the options.

    Returns:
        The spec string.

    Raises:
        SpecError: a name, key or value that cannot be written so that it reads back equal
            (a value holding ``,`` or ``=``, a string that would parse as a number, ...).

    Example:
        >>> format_spec("mlp", {"widths": "64-32", "dropout": 0.1})
        'mlp:dropout=0.1,widths=64-32'
    """
    if not _NAME.fullmatch(name or ""):
        raise SpecError(f"invalid spec name {name!r}")
    kwargs = dict(kwargs or {})
    if not kwargs:
        return name
    items: list[str] = []
    path = kwargs.pop("path", None)
    if path is not None:
        path = str(path)
        if "=" in path or (kwargs and "," in path) or path != path.strip() or not path:
            raise SpecError(f"spec {name!r}: path {path!r} cannot be written in a spec")
        items.append(path)
    for key in sorted(kwargs):
        if not _KEY.fullmatch(key):
            raise SpecError(f"spec {name!r}: invalid key {key!r}")
        text = _format_value(name, key, kwargs[key])
        if "," in text or "=" in text or text != text.strip() or not text:
            raise SpecError(f"spec {name!r}: value {text!r} of {key!r} cannot be written in a spec")
        items.append(f"{key}={text}")
    return f"{name}:{','.join(items)}"


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
        SpecError: a malformed spec or a bare value after ``:``.
        PolicyError: an unknown scheme or parameter, or an invalid value.

    Example:
        >>> resolve_scheme("Kaiming-Normal:nonlinearity=relu").to_config()["nonlinearity"]
        'relu'
    """
    if not isinstance(spec, str):
        return as_scheme(spec)
    name, params = parse_spec(spec)
    if "path" in params:
        raise SpecError(
            f"scheme {spec!r}: parameters are key=value (e.g. 'normal:std=0.02'), "
            f"got {params['path']!r}"
        )
    return as_scheme({"name": canonical_name(name), **params})


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


def load_policy(source: PolicySource) -> Policy:
    """A policy from a Policy (returned), a mapping, a policy file, a preset or a scheme.

    Args:
        source: a :class:`~initlab.Policy`; a mapping in the file schema; the path of a
            ``.yaml``/``.yml``/``.toml``/``.json`` file; a preset, optionally with arguments
            (``"gpt2:n_layers=12,std=0.02"``); or a scheme spec
            (``"kaiming_normal:nonlinearity=relu"``), the one-rule policy
            :func:`scheme_policy`.

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
        return get_preset(name, **params)
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
