"""The policy error: one line that says where (file, line, key path), what, and the fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["PolicyError", "at"]


class PolicyError(ValueError):
    """An invalid policy, rule or policy file.

    Its text is one line, ``"<file>, line <n>: <key path>: <message>"`` (each part when known).

    Attributes:
        message: what is wrong and how to fix it.
        path: where, as a key path (``"rules[2].scheme"``), or None for the whole policy.
        file: the policy file, when the policy came from one.
        line: the line of the file (1-based), when known.

    Example:
        >>> try:
        ...     with at("rules[1]"):
        ...         raise PolicyError("expected an int or list of ints, got 'x'", "ndim")
        ... except PolicyError as e:
        ...     print(e.path, "|", e)
        rules[1].ndim | rules[1].ndim: expected an int or list of ints, got 'x'
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message, self.path, self.file, self.line = message, path or None, file, line
        where = f"{file}, line {line}" if file and line else file or (line and f"line {line}")
        super().__init__(": ".join(p for p in (where, path, message) if p))

    def within(self, prefix: str) -> PolicyError:
        """The same error with ``prefix`` before its path (``"rules[2]"`` + ``"ndim"``)."""
        sep = "" if not self.path or self.path.startswith("[") else "."
        return PolicyError(self.message, f"{prefix}{sep}{self.path or ''}", self.file, self.line)

    def in_file(self, file: str, line: int | None = None) -> PolicyError:
        """The same error located in ``file`` (at ``line``, or the line it already has)."""
        return PolicyError(self.message, self.path, file, line or self.line)


@contextlib.contextmanager
def at(path: str) -> Iterator[None]:
    """Prefix the path of a PolicyError raised inside the block with ``path``.

    Args:
        path: the key path of the block (``"rules[2]"``).

    Example:
        >>> try:
        ...     with at("rules[2]"):
        ...         raise PolicyError("bad", "ndim")
        ... except PolicyError as e:
        ...     print(e)
        rules[2].ndim: bad
    """
    try:
        yield
    except PolicyError as e:
        raise e.within(path) from None
