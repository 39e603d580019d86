"""How names and specs are written: the syntax under :mod:`initlab.specs`.

* Names (schemes, presets, models, lab entries) are compared case-insensitively, with ``-``
  and ``_`` interchangeable, and shown one way: lower case with underscores
  (``xavier_uniform``, ``torch_default``, ``gpt2``): :func:`canonical_name`.
* A misspelt name gets the closest valid one as a hint: :func:`did_you_mean`.
* A spec is ``name:key=value,key=value`` (:func:`parse_spec`, :func:`format_spec`). Values
  are parsed, in this order, as ``int``, ``float``, ``bool`` (``true``/``false``, any case),
  ``None`` (``none``/``null``) or else kept as ``str``; the ``path`` key always stays a string.
  A first item without ``=`` is the positional ``path``; when nothing after the colon contains
  ``=``, all of it is the path (so a path may contain commas).

This module imports nothing from initlab, so every layer (scheme rules, data sets, the
resolvers in :mod:`initlab.specs`) reads strings the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SpecError",
    "canonical_name",
    "did_you_mean",
    "format_spec",
    "parse_spec",
    "parse_value",
]


def canonical_name(name: str) -> str:
    """``name`` as initlab shows it: stripped, lower case, ``-`` written ``_``.

    Args:
        name: a scheme, preset, model or entry name as a user typed it.

    Returns:
        The canonical form, used as the key of every registry.

    Example:
        >>> canonical_name(" Torch-Default ")
        'torch_default'
    """
    return name.strip().lower().replace("-", "_")


# -- specs ---------------------------------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string.

    Args:
        word: what was given.
        candidates: the valid words.

    Returns:
        The hint, to append to an error message.

    Example:
        >>> did_you_mean("orthogonl", ["orthogonal", "zeros"]), did_you_mean("qqq", ["zeros"])
        (" (did you mean 'orthogonal'?)", '')
    """
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class SpecError(ValueError):
    """A spec string that does not follow ``name:key=value,...`` (message names the spec).

    Example:
        >>> import initlab
        >>> try:
        ...     initlab.syntax.parse_spec(":std=0.02")
        ... except initlab.SpecError as e:
        ...     print(type(e).__name__, e)
        SpecError spec ':std=0.02': missing name before ':' (write 'name:key=value,...')
    """


# -- the grammar ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``text`` as int, float, bool (``true``/``false``), None (``none``/``null``) or else str.

    Args:
        text: one value of a spec, as written.

    Returns:
        The first of int, float, bool, None that reads ``text`` whole, else ``text`` itself.

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
