"""Policy expressions: scheme parameters computed from the model's quantities, safely.

A policy file (or a rule's scheme mapping) may give a numeric scheme parameter as a string
expression of the model's quantities (:func:`initlab.policy.quantities.model_quantities`)::

    - scheme: {name: normal, std: "0.02 / sqrt(2 * n_layer)"}
      name: "*.c_proj"

The language is arithmetic on floats and nothing else. It is parsed with :mod:`ast` and only
these nodes are accepted: int and float literals; names (the model's quantities); ``+ - * / //
% **``; unary ``+ -``; parentheses; calls by name of ``sqrt``, ``log``, ``exp`` (one argument),
``abs`` (one), ``min`` and ``max`` (two or more). No attribute, subscript, comparison, string,
keyword or anything else is ever evaluated, and nothing is ``eval``-ed. An expression is at
most :data:`MAX_LENGTH` characters and an exponent at most :data:`MAX_EXPONENT` in absolute
value, so ``9**9**9`` is refused at once instead of computing.

A :class:`SchemeTemplate` is a scheme whose parameters hold such expressions. A policy keeps it
as written (files round-trip the text) and :func:`initlab.plan` binds it to the model being
planned (:meth:`SchemeTemplate.bind`); the report shows both, ``std=0.02 / sqrt(2 * n_layer) =
0.004082``. Errors are :class:`ExpressionError`, one line naming the fix.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..schemes.base import Scheme, get_scheme, scheme_class

__all__ = [
    "FUNCTIONS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "Expression",
    "ExpressionError",
    "SchemeTemplate",
    "evaluate",
    "is_expression",
]

#: the functions an expression may call, with their number of arguments (min, max)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    "sqrt": (math.sqrt, 1, 1),
    "log": (math.log, 1, 1),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "min": (min, 2, None),
    "max": (max, 2, None),
}
#: the longest expression accepted, in characters
MAX_LENGTH = 256
#: the largest exponent (absolute value) of ``**``
MAX_EXPONENT = 64.0

_BINARY: dict[type, Callable[[float, float], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}  # fmt: skip
_ALLOWED = (
    "numbers, the model's quantities, + - * / // % **, parentheses and sqrt/log/exp/abs/min/max"
)


class ExpressionError(ValueError):
    """An expression that cannot be parsed, is not allowed, or cannot be evaluated.

    Attributes:
        message: what is wrong and the fix.
        key: the scheme parameter that holds the expression (``"std"``), when known.

    Example:
        >>> try:
        ...     Expression("__import__('os')")
        ... except ExpressionError as e:
        ...     print(e.message[:60])
        expression "__import__('os')": calling '__import__' is not a
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        self.message, self.key = message, key
        super().__init__(message)


def _name_of(node: ast.AST) -> str:
    return type(node).__name__


def _check(node: ast.AST, text: str) -> None:
    """Refuse every node outside the language (the whole tree, before anything is evaluated)."""

    def bad(what: str) -> ExpressionError:
        return ExpressionError(f"expression {text!r}: {what} is not allowed; write {_ALLOWED}")

    if isinstance(node, ast.Expression):
        _check(node.body, text)
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"the literal {v!r}")
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(
                f"expression {text!r}: {node.id!r} is a function; call it, e.g. {node.id}(x)"
            )
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise bad(f"the operator {_name_of(node.op)}")
        _check(node.left, text)
        _check(node.right, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise bad(f"the operator {_name_of(node.op)}")
        _check(node.operand, text)
    elif isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in FUNCTIONS:
            what = repr(fn) if fn else "a computed function"
            raise ExpressionError(
                f"expression {text!r}: calling {what} is not allowed; the functions are "
                f"{', '.join(FUNCTIONS)}"
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise bad(f"a keyword or starred argument of {fn}()")
        _, lo, hi = FUNCTIONS[fn]
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            n = f"{lo}" if lo == hi else f"{lo} or more"
            raise ExpressionError(
                f"expression {text!r}: {fn}() takes {n} argument(s), got {len(node.args)}"
            )
        for a in node.args:
            _check(a, text)
    else:
        raise bad(_name_of(node))


@dataclasses.dataclass(frozen=True)
class Expression:
    """A safe arithmetic expression of named quantities (see the module doc for the language).

    Checked when made (syntax, allowed constructs, length); evaluated on floats by
    :meth:`evaluate`. Equal when the text is equal.

    Args:
        text: the expression, e.g. ``"0.02 / sqrt(2 * n_layer)"``.

    Example:
        >>> e = Expression("0.02 / sqrt(2 * n_layer)")
        >>> sorted(e.names), e.evaluate({"n_layer": 12})
        (['n_layer'], 0.004082482904638631)
    """

    text: str
    tree: ast.Expression = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = self.text
        if not isinstance(text, str):
            raise ExpressionError(f"an expression must be a string, got {text!r}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(
                f"expression of {len(text)} characters is too long (at most {MAX_LENGTH}); "
                "write a shorter formula"
            )
        if not text.strip():
            raise ExpressionError("empty expression; write a number or a formula")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError) as e:
            where = f" at column {e.offset}" if getattr(e, "offset", None) else ""
            msg = getattr(e, "msg", str(e))
            raise ExpressionError(
                f"expression {text!r}: invalid syntax{where} ({msg}); write {_ALLOWED}"
            ) from None
        _check(tree, text)
        object.__setattr__(self, "tree", tree)

    def __str__(self) -> str:
        return self.text

    @property
    def names(self) -> frozenset[str]:
        """The quantity names the expression reads."""
        return frozenset(
            n.id
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Name) and not _is_called(self.tree, n)
        )

    def evaluate(self, quantities: Mapping[str, float]) -> float:
        """The expression's value, a finite float, with ``quantities`` for its names.

        Args:
            quantities: ``{name: number}``, e.g. a model's
                (:func:`~initlab.policy.quantities.model_quantities`).

        Returns:
            The value.

        Raises:
            ExpressionError: an unknown name (the known ones listed, closest first), division
                by zero, a math domain error, too large an exponent, or a non-finite result.
        """
        unknown = sorted(self.names - set(quantities))
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, list(quantities), n=len(quantities), cutoff=0.5)
            known = close + sorted(set(quantities) - set(close))
            raise ExpressionError(
                f"expression {self.text!r}: unknown name {name!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; this model's quantities are: {', '.join(known) or '(none)'}"
            )
        try:
            value = _eval(self.tree.body, quantities, self.text)
        except ZeroDivisionError:
            raise ExpressionError(
                f"expression {self.text!r}: division by zero; check the quantities it divides by"
            ) from None
        except (ValueError, OverflowError) as e:
            if isinstance(e, ExpressionError):
                raise
            raise ExpressionError(
                f"expression {self.text!r}: math error ({e}); check the arguments of its "
                "functions and powers"
            ) from None
        if isinstance(value, complex) or not math.isfinite(value):
            raise ExpressionError(
                f"expression {self.text!r} is {value} (not a finite real number); check its "
                "powers, divisions and quantities"
            )
        return float(value)


def _is_called(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _eval(node: ast.AST, q: Mapping[str, float], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(q[node.id])
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, q, text)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, q, text), _eval(node.right, q, text)
        if isinstance(node.op, ast.Pow) and not abs(b) <= MAX_EXPONENT:
            raise ExpressionError(
                f"expression {text!r}: the exponent {b:g} is too large (at most {MAX_EXPONENT:g} "
                "in absolute value); write a smaller power"
            )
        if isinstance(a, complex) or isinstance(b, complex):
            raise ValueError(f"{_SYMBOL[type(node.op)]} of a complex number")
        return _BINARY[type(node.op)](a, b)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # checked by _check
    args = [_eval(a, q, text) for a in node.args]
    if any(isinstance(a, complex) for a in args):
        raise ValueError(f"{node.func.id}() of a complex number")
    return FUNCTIONS[node.func.id][0](*args)


def evaluate(text: str, quantities: Mapping[str, float]) -> float:
    """The value of the expression ``text`` with ``quantities`` for its names.

    Args:
        text: the expression (see the module doc for the language).
        quantities: ``{name: number}``.

    Returns:
        A finite float.

    Raises:
        ExpressionError: one line naming the problem and the fix.

    Example:
        >>> evaluate("min(0.02, 1 / sqrt(d_model))", {"d_model": 4096})
        0.015625
        >>> evaluate("9**9**9", {})
        Traceback (most recent call last):
        ...
        initlab.policy.expressions.ExpressionError: expression '9**9**9': the exponent ...
    """
    return Expression(text).evaluate(quantities)


def is_expression(value: Any) -> bool:
    """Whether a scheme parameter value is an expression: a string that is not a number.

    ``"inf"``, ``"-inf"`` and ``"nan"`` (how JSON files write them) and numeric strings are
    numbers, not expressions.

    Args:
        value: a scheme parameter's value as given.

    Returns:
        True for a string that ``float()`` does not read.

    Example:
        >>> is_expression("0.02 / sqrt(n_layer)"), is_expression("inf"), is_expression(0.02)
        (True, False, False)
    """
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _frozen(v: Any) -> Any:
    """Lists as tuples, recursively (so a template is hashable)."""
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    return v


@dataclasses.dataclass(frozen=True)
class SchemeTemplate:
    """A scheme whose numeric parameters are expressions, bound to a model when planned.

    Rules hold one when their scheme mapping has an expression (:func:`initlab.policy.Rule`
    makes it); :func:`initlab.plan` binds it with the model's quantities. It is data: files
    write the expressions' text back.

    Args:
        name: the scheme's canonical name.
        args: ``(key, value)`` pairs, sorted by key; expression values are :class:`Expression`.

    Example:
        >>> t = SchemeTemplate.make("normal", {"std": "0.02 / sqrt(2 * n_layer)"})
        >>> t.to_config()
        {'name': 'normal', 'std': '0.02 / sqrt(2 * n_layer)'}
        >>> t.bind({"n_layer": 2})
        Normal(mean=0.0, std=0.01)
    """

    name: str
    args: tuple[tuple[str, Any], ...]

    @classmethod
    def make(cls, name: str, params: Mapping[str, Any]) -> SchemeTemplate:
        """A template from a scheme name and parameters; in the scheme's float parameters,
        string values that are not numbers become :class:`Expression` (checked now;
        :class:`ExpressionError` names the key)."""
        scheme = scheme_class(name)
        floats = {f.name for f in dataclasses.fields(scheme) if "float" in str(f.type)}
        out = []
        for key, v in sorted(params.items()):
            if key in floats and is_expression(v):
                try:
                    v = Expression(v)
                except ExpressionError as e:
                    raise ExpressionError(e.message, key) from None
            out.append((key, _frozen(v)))
        return cls(scheme.name, tuple(out))

    @property
    def expressions(self) -> dict[str, Expression]:
        """The parameters given as expressions, ``{key: Expression}``."""
        return {k: v for k, v in self.args if isinstance(v, Expression)}

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **params}`` with each expression as its text."""
        return {"name": self.name, **{k: str(v) if isinstance(v, Expression) else v
                                      for k, v in self.args}}  # fmt: skip

    def bind(self, quantities: Mapping[str, float]) -> Scheme:
        """The scheme with every expression evaluated with ``quantities``.

        Args:
            quantities: ``{name: number}``, a model's quantities.

        Returns:
            The scheme.

        Raises:
            ExpressionError: from an expression, or a value the scheme refuses; ``key`` names
                the parameter.
        """
        values: dict[str, Any] = {}
        for key, v in self.args:
            if isinstance(v, Expression):
                try:
                    v = v.evaluate(quantities)
                except ExpressionError as e:
                    raise ExpressionError(e.message, key) from None
            values[key] = v
        try:
            return get_scheme({"name": self.name, **values})
        except (TypeError, ValueError, KeyError) as e:
            shown = ", ".join(f"{k} = {values[k]:.6g}" for k in self.expressions)
            msg = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
            raise ExpressionError(f"{msg} (with {shown})") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ExpressionError(
            f"scheme {self.name!r} has parameters that are expressions of a model's "
            f"quantities ({', '.join(f'{k}={v}' for k, v in self.expressions.items())}); "
            "it is evaluated when a policy is planned against a model: use it in a rule and "
            "call initlab.plan/initialize/materialize(model, policy)"
        )
