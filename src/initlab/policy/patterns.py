"""Matching names and module types: globs, ``re:`` regular expressions, class names and paths.

Patterns are globs (:func:`fnmatch.fnmatchcase`: ``*`` matches any run of characters, dots
included; ``?`` one character; ``[abc]`` a set) or, when prefixed with ``re:``, regular
expressions that must match the whole name (``re.fullmatch``). A module type is a class name
(``"Linear"``, compared along the MRO) or a dotted path (``"torch.nn.Linear"``), resolved
among modules already imported and never importing one.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import sys
from typing import Any

from torch import nn

from .errors import PolicyError

__all__ = ["DOTTED", "class_path", "compile_pattern", "pattern_matches", "type_matches"]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A compiled regex for a glob pattern or a ``re:`` regular expression; use ``fullmatch``.

    Raises PolicyError (no path; the caller adds it) for a bad regular expression or a
    non-string pattern.

    Args:
        pattern: a glob (``*`` any run of characters, dots included; ``?``; ``[abc]``) or
            ``"re:<regex>"``.

    Returns:
        The compiled pattern.

    Example:
        >>> compile_pattern("layers.*.weight").fullmatch("layers.3.attn.weight") is not None
        True
    """
    if not isinstance(pattern, str):
        raise PolicyError(f"a pattern must be a string (a glob or 're:<regex>'), got {pattern!r}")
    return _compile(pattern)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    if pattern.startswith("re:"):
        try:
            return re.compile(pattern[3:])
        except re.error as e:
            raise PolicyError(
                f"bad regular expression {pattern!r}: {e}; fix the regex after 're:' "
                f"(or drop 're:' for a glob)"
            ) from None
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def pattern_matches(pattern: str, text: str) -> bool:
    r"""Whether ``text`` matches the glob or ``re:`` pattern (whole string).

    Args:
        pattern: a glob or ``"re:<regex>"``.
        text: the name to test.

    Returns:
        True when the whole of ``text`` matches.

    Example:
        >>> pattern_matches("weight_hh_l*", "weight_hh_l0"), pattern_matches("w?ight", "weights")
        (True, False)
        >>> pattern_matches(r"re:weight_(ih|hh)_l\d", "weight_ih_l1")
        True
    """
    return compile_pattern(pattern).fullmatch(text) is not None


#: a dotted Python path (``<locals>`` allowed, as in local classes' qualnames)
DOTTED = re.compile(r"[A-Za-z_]\w*(\.([A-Za-z_]\w*|<locals>))*")


def class_path(cls: type) -> str:
    """The dotted path stored for a class: ``torch.nn.X`` for torch.nn's public classes.

    Args:
        cls: a class.

    Returns:
        ``torch.nn.X`` or ``module.qualname``.

    Example:
        >>> class_path(nn.Linear), class_path(nn.modules.conv._ConvNd)
        ('torch.nn.Linear', 'torch.nn.modules.conv._ConvNd')
    """
    if cls.__module__.startswith("torch.nn.") and getattr(nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _lookup(path: str) -> Any:
    """The object at a dotted path among already imported modules (never imports), or None."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if (obj := sys.modules.get(".".join(parts[:i]))) is not None:
            for p in parts[i:]:
                obj = getattr(obj, p, None)
            return obj
    return None


@functools.lru_cache(maxsize=4096)
def type_matches(spec: str, cls: type) -> bool:
    """Whether the module-type string ``spec`` names ``cls`` or one of its base classes.

    ``"nn.X"`` is read as ``"torch.nn.X"``. A bare name compares class names along the MRO; a
    dotted path compares paths, then the class at that path among modules already imported
    (never importing one).

    Args:
        spec: a class name (``"Linear"``) or dotted path (``"torch.nn.Conv2d"``, ``"nn.Module"``).
        cls: the module's class.

    Returns:
        True when ``spec`` names ``cls`` or a base class of it.

    Example:
        >>> type_matches("Linear", nn.Linear), type_matches("nn.Module", nn.Linear)
        (True, True)
        >>> type_matches("torch.nn.Conv2d", nn.Linear)
        False
    """
    mro = getattr(cls, "__mro__", (cls,))
    if "." not in spec:
        return any(c.__name__ == spec for c in mro)
    if any(f"{c.__module__}.{c.__qualname__}" == spec for c in mro):
        return True
    target = _lookup(f"torch.{spec}" if spec.startswith("nn.") else spec)
    return isinstance(target, type) and target in mro
