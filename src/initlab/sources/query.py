"""The ``name?key=value&key=value`` part of a library model spec (``timm:vit_tiny_patch16_224?
depth=2&embed_dim=64``).

Values are read by :func:`initlab.syntax.parse_value` (int, float, bool, None, else str); a value
with commas is a tuple of such values (``depths=2,2``).
"""

from __future__ import annotations

from typing import Any

from ..syntax import parse_value
from ..zoo import ModelError

__all__ = ["parse_query"]


def parse_query(prefix: str, rest: str) -> tuple[str, dict[str, Any]]:
    """Split ``rest`` (what follows ``prefix:``) into the model name and its keyword arguments.

    Args:
        prefix: the spec's prefix, for messages (``"timm"``).
        rest: ``"name"`` or ``"name?key=value&key=value"``.

    Returns:
        ``(name, kwargs)``.

    Raises:
        ModelError: no name, or an item that is not ``key=value`` with a Python identifier.

    Example:
        >>> parse_query("timm", "convnext_atto?depths=1,1,1,1&ls_init_value=0.5")
        ('convnext_atto', {'depths': (1, 1, 1, 1), 'ls_init_value': 0.5})
    """
    name, _, query = rest.strip().partition("?")
    name = name.strip()
    if not name:
        raise ModelError(f"model spec '{prefix}:{rest}' names no model; write '{prefix}:NAME'")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (i.strip() for i in query.split("&"))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ModelError(
                f"model spec '{prefix}:{rest}': {item!r} is not key=value; write "
                f"'{prefix}:{name}?key=value&key=value'"
            )
        parts = [parse_value(v.strip()) for v in value.split(",")]
        kwargs[key] = tuple(parts) if "," in value else parts[0]
    return name, kwargs
