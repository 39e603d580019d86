"""How results show: a rich table, plain text, a short repr, and strict JSON.

Every result object of the tools (a :class:`~initlab.diagnostics.records.Diagnosis`, an LSUV
report, a scheme comparison) is :class:`Rendered`; the small formatters (:func:`fmt`,
:func:`pct`) keep their tables alike.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Rendered", "dump_json", "fmt", "jsonable", "pct", "render"]


class Rendered:
    """Shared faces of result objects with a ``table()`` and a ``to_dict()``: rich rendering,
    plain text (``str``) and JSON (optionally written to a file).

    Example:
        >>> from rich.table import Table
        >>> class Ratio(Rendered):
        ...     def table(self):
        ...         t = Table("ratio")
        ...         t.add_row("0.5")
        ...         return t
        ...     def to_dict(self):
        ...         return {"ratio": float("nan")}
        ...     def summary(self):
        ...         return "one ratio"
        >>> r = Ratio()
        >>> repr(r), r.to_json(indent=None), "0.5" in str(r)
        ('<Ratio: one ratio>', '{"ratio": "nan"}', True)
    """

    def table(self) -> Table:  # pragma: no cover - every subclass defines it
        """A rich Table of the result (defined by each subclass)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        """A JSON-friendly dict of the result (defined by each subclass)."""
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        """One line: what the result says (defined by each subclass)."""
        raise NotImplementedError

    def __rich__(self) -> Table:
        return self.table()

    def __str__(self) -> str:
        return render(self.table())

    # a shell or notebook shows a short summary, not every record (print() shows the table)
    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary()}>"

    def _repr_html_(self) -> str:
        return f"<p><b>{type(self).__name__}</b>: {html.escape(self.summary())}</p>"

    def to_json(self, path: str | Path | None = None, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        return dump_json(self.to_dict(), path, indent)


def fmt(v: float | None) -> str:
    """Compact number: 4 significant digits, "-" for None.

    Args:
        v: a number or None.

    Returns:
        The text.

    Example:
        >>> fmt(0.000123456), fmt(12345.678), fmt(None)
        ('0.0001235', '1.235e+04', '-')
    """
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def pct(v: float | None) -> str:
    """A fraction as a whole percentage, "-" for None.

    Args:
        v: a fraction or None.

    Returns:
        The text.

    Example:
        >>> pct(0.25), pct(None)
        ('25%', '-')
    """
    return "-" if v is None else f"{100 * v:.0f}%"


def jsonable(obj: Any) -> Any:
    """Replace non-finite floats by strings, recursively (JSON has no literal for them).

    Args:
        obj: nested dicts, lists, tuples and scalars.

    Returns:
        The same structure with tuples as lists, dict keys as strings and inf/nan as text.

    Example:
        >>> jsonable({"a": (1, 2), "b": float("inf")})
        {'a': [1, 2], 'b': 'inf'}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def dump_json(obj: Any, path: str | Path | None, indent: int | None = 2) -> str:
    """JSON text of ``obj`` (via :func:`jsonable`, strict JSON); written to ``path`` if given.

    Args:
        obj: the data.
        path: a file to write (with a final newline), or None.
        indent: as in ``json.dumps``.

    Returns:
        The JSON text.

    Example:
        >>> dump_json({"ratio": float("nan")}, None, indent=None)
        '{"ratio": "nan"}'
    """
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    if path is not None:
        Path(path).write_text(text + "\n", encoding="utf-8")
    return text


def render(table: Any, width: int = 180) -> str:
    """Plain text of a rich renderable (no terminal needed).

    Args:
        table: a rich renderable.
        width: the console width.

    Returns:
        The text.

    Example:
        >>> from rich.table import Table
        >>> t = Table("x")
        >>> t.add_row("1")
        >>> "x" in render(t, width=20)
        True
    """
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(table)
    return console.export_text()
