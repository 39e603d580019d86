"""How names are written: one normaliser for schemes, presets, models and lab entries.

Names are compared case-insensitively, with ``-`` and ``_`` interchangeable, and shown one
way: lower case with underscores (``xavier_uniform``, ``torch_default``, ``gpt2``).
"""

from __future__ import annotations

__all__ = ["canonical_name"]


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
