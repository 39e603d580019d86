"""One rule of an init policy: which parameters it matches, and the scheme it applies.

A :class:`Rule` sees a parameter only through its :class:`ParamInfo` (names, owning module
class, shape, packed blocks) and matches when every criterion it sets holds:

* ``module``: module types, as classes or strings. A string matches a class in the owning
  module's MRO (subclasses match, as ``isinstance``) by ``__name__`` (``"Linear"``) or dotted
  path (``"torch.nn.Linear"``, ``"torch.nn.modules.linear.Linear"``), lazily and without
  importing anything, so a policy may name classes of packages that are not installed.
  ``"nn.X"`` reads as ``"torch.nn.X"``. Classes are stored as dotted paths (serialisable).
* ``name``: a pattern on the owning module's qualified name (``""`` for the root).
* ``param``: a pattern on the parameter's own name (``"weight"``, ``"weight_hh_l*"``).
* ``ndim``: one rank or several; ``shape``: exact sizes, ``None`` entries are wildcards.
* ``block``: one block of a packed parameter (``"f"``: an LSTM's forget gate; names from
  :func:`initlab.compute_fans`); never matches a parameter that lacks that block.
* ``role``: what the parameter is to its layer, from the layer registry (one of
  :data:`initlab.layers.ROLES`: ``"norm_scale"`` matches nn.LayerNorm's weight and any
  ``*RMSNorm``/``*LayerNorm`` with a 1-D weight alike); never matches a parameter of an
  unregistered layer.

Patterns are globs or ``re:`` regular expressions (:mod:`initlab.policy.patterns`).

Invalid values raise :class:`PolicyError`; its ``path`` names the key (``"rules[1].ndim"``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from typing import Any

from ..layers.spec import ROLES
from ..schemes.base import Scheme, get_scheme, list_schemes, resolve_name, scheme_class
from ..schemes.base import aliases as scheme_aliases
from ..syntax import SpecError, did_you_mean, parse_spec
from .errors import PolicyError, at
from .expressions import ExpressionError, SchemeTemplate, is_expression
from .patterns import DOTTED, class_path, compile_pattern, pattern_matches, type_matches

__all__ = ["ParamInfo", "Rule", "as_scheme", "scheme_to_data"]


def _module_spec(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else (value,)
    if not items:
        raise PolicyError("empty list of module types; omit `module` to match any module", None)
    out = []
    for i, item in enumerate(items):
        where = f"[{i}]" if isinstance(value, (list, tuple)) else None
        if isinstance(item, type):
            out.append(class_path(item))
        elif isinstance(item, str) and DOTTED.fullmatch(item.strip()):
            out.append(item.strip())
        elif isinstance(item, str):
            raise PolicyError(
                f"{item!r} is not a module type; write a class name ('Linear') or a dotted "
                f"path ('torch.nn.Linear')",
                where,
            )
        else:
            raise PolicyError(
                f"expected a module class, a class name or a list of them, got {item!r}", where
            )
    return tuple(out)


# -- schemes -------------------------------------------------------------------------------
def as_scheme(value: Any) -> Scheme | SchemeTemplate:
    """A Scheme from a Scheme, a spec string or a config mapping (``{"name": ..., ...}``).

    A spec string is a name with optional parameters, ``"kaiming_normal:mode=fan_out"``
    (:func:`initlab.syntax.parse_spec`). A float parameter given as an expression of the
    model's quantities (``{"name": "normal", "std": "0.02 / sqrt(2 * n_layer)"}``) makes a
    :class:`~initlab.policy.expressions.SchemeTemplate`, bound to the model when planned.

    Raises PolicyError, with the path of the offending parameter when there is one.

    Args:
        value: a Scheme, a name or alias, or a mapping with ``name`` and parameters.

    Returns:
        The scheme.

    Example:
        >>> as_scheme({"name": "normal", "std": 0.02})
        Normal(mean=0.0, std=0.02)
        >>> as_scheme({"name": "normal", "std": "0.02 / sqrt(n_layer)"}).to_config()
        {'name': 'normal', 'std': '0.02 / sqrt(n_layer)'}
        >>> as_scheme({"name": "normal", "sd": 1})
        Traceback (most recent call last):
        ...
        initlab.policy.errors.PolicyError: sd: unknown parameter 'sd' for scheme 'normal' ...
    """
    if isinstance(value, (Scheme, SchemeTemplate)):
        return value
    if isinstance(value, str):
        try:
            name, params = parse_spec(value)
        except SpecError as e:
            raise PolicyError(str(e)) from None
        if "path" in params:
            raise PolicyError(
                f"scheme {value!r}: parameters are key=value (e.g. 'normal:std=0.02'), "
                f"got {params['path']!r}"
            )
    elif isinstance(value, Mapping):
        params = dict(value)
        if "name" not in params:
            raise PolicyError(
                "missing 'name': write the scheme as a name ('zeros') or a mapping with a name "
                "and parameters ({name: normal, std: 0.02})"
            )
        name = params.pop("name")
    else:
        raise PolicyError(
            f"expected a scheme name or a mapping with 'name' and parameters, got {value!r}"
        )
    if not isinstance(name, str):
        raise PolicyError(f"scheme name must be a string, got {name!r}", "name")
    try:
        cls = scheme_class(name)
    except KeyError:
        known = sorted({c.name for c in list_schemes()} | set(scheme_aliases()))
        raise PolicyError(
            f"unknown scheme {name!r}{did_you_mean(resolve_name(name), known)}; "
            f"known schemes: {', '.join(known)}"
        ) from None
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for key, v in params.items():
        if key not in fields:
            raise PolicyError(
                f"unknown parameter {key!r} for scheme {cls.name!r}"
                f"{did_you_mean(key, list(fields))}; "
                f"its parameters are: {', '.join(fields) or '(none)'}",
                str(key),
            )
        numeric = "float" in fields[key] or "int" in fields[key]
        if isinstance(v, bool) and numeric and "bool" not in fields[key]:
            raise PolicyError(
                f"must be a number, got {v!r} (a bool is not a number; write e.g. 1.0)", str(key)
            )
        if is_expression(v) and numeric and "float" not in fields[key]:
            raise PolicyError(
                f"an expression ({v!r}) is only allowed in a float parameter; {key!r} of scheme "
                f"{cls.name!r} is {fields[key]}: write a number",
                str(key),
            )
    if any(is_expression(v) and "float" in fields[k] for k, v in params.items()):
        try:
            template = SchemeTemplate.make(cls.name, params)
        except ExpressionError as e:
            raise PolicyError(e.message, e.key) from None
        _check_fixed(cls, template)
        return template
    try:
        return get_scheme({"name": name, **params})
    except (TypeError, ValueError, KeyError) as e:
        msg = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        raise PolicyError(f"invalid parameters: {msg}", _bad_field(msg, cls.name, params)) from None


def _check_fixed(cls: type[Scheme], template: SchemeTemplate) -> None:
    """Refuse now a bad parameter of ``template`` that is not an expression (the expressions
    wait for a model): the scheme is tried with each expression's default value (or 1)."""
    exprs = template.expressions
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    trial = {}
    for key, v in template.args:
        d = defaults.get(key)
        stand_in = d if isinstance(d, (int, float)) and not isinstance(d, bool) else 1.0
        trial[key] = stand_in if key in exprs else v
    try:
        get_scheme({"name": cls.name, **trial})
    except (TypeError, ValueError, KeyError) as e:
        msg = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        key = _bad_field(msg, cls.name, trial)
        if key is not None and key not in exprs:
            raise PolicyError(f"invalid parameters: {msg}", key) from None


def _bad_field(msg: str, scheme: str, params: Mapping[str, Any]) -> str | None:
    """The parameter a scheme's ``"<scheme>: <field> ..."`` error names, if one was given."""
    rest = msg.removeprefix(f"{scheme}: ") if msg.startswith(f"{scheme}: ") else None
    if rest is None:
        return None
    word = re.match(r"\w+", rest)
    return word.group(0) if word and word.group(0) in params else None


def _same_value(a: Any, b: Any) -> bool:
    """Equal, and of the same type and representation (so -0.0 differs from 0.0)."""
    return type(a) is type(b) and a == b and repr(a) == repr(b)


def scheme_to_data(scheme: Scheme | SchemeTemplate) -> str | dict[str, Any]:
    """A scheme as file data: its name alone, or ``{"name": ..., **non-default parameters}``.

    A :class:`~initlab.policy.expressions.SchemeTemplate` gives its parameters as written, the
    expressions as text.

    Args:
        scheme: the scheme (its config must be JSON-safe: a custom scheme's function importable).

    Returns:
        The name, or a dict of the name and the parameters that differ from their defaults.

    Example:
        >>> scheme_to_data(get_scheme("zeros")), scheme_to_data(get_scheme("normal", std=0.02))
        ('zeros', {'name': 'normal', 'std': 0.02})
    """
    if isinstance(scheme, SchemeTemplate):
        return scheme.to_config()
    try:
        config = scheme.to_config()
    except (TypeError, ValueError) as e:
        raise PolicyError(f"cannot write this scheme to a file: {e}", "scheme") from None
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(scheme)
        if f.default is not dataclasses.MISSING
    }
    for key in list(config):
        if key != "name" and key in defaults:
            d = defaults[key]
            d = list(d) if isinstance(d, tuple) else d
            if _same_value(d, config[key]):
                del config[key]
    return config["name"] if len(config) == 1 else config


_MATCH_KEYS = ("module", "name", "param", "ndim", "shape", "block", "role")


# -- ParamInfo and Rule ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """What a rule can see of one parameter.

    Attributes:
        qualname: the parameter's qualified name (``"encoder.layers.0.self_attn.in_proj_weight"``).
        module_name: the owning module's qualified name (``""`` for the root module).
        param_name: the name inside its module (``"in_proj_weight"``).
        module_type: the owning module's class.
        shape: the parameter's (logical) shape.
        block_names: the blocks of a packed parameter, from ``compute_fans`` (``("q","k","v")``).
        role: the parameter's role from the layer registry (None: layer not registered).

    Example:
        >>> from torch import nn
        >>> info = ParamInfo("rnn.weight_hh_l0", "rnn", "weight_hh_l0", nn.LSTM, (32, 8),
        ...                  ("i", "f", "g", "o"))
        >>> Rule("orthogonal", module="LSTM", param="weight_*").matches(info)
        True
    """

    qualname: str
    module_name: str
    param_name: str
    module_type: type
    shape: tuple[int, ...]
    block_names: tuple[str, ...] = ()
    role: str | None = None


def _int_tuple(value: Any, what: str, allow_none: bool = False) -> tuple[Any, ...]:
    single = isinstance(value, int) and not isinstance(value, bool) and not allow_none
    items = (value,) if single else value
    if not isinstance(items, (list, tuple)):
        raise PolicyError(f"expected {what}, got {value!r}")
    out: list[Any] = []
    for v in items:
        if allow_none and (v is None or v == "*"):
            out.append(None)
        elif isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            out.append(v)
        else:
            raise PolicyError(f"expected {what}, got {value!r} (bad entry {v!r})")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Apply ``scheme`` to the parameters that match every criterion given (see module doc).

    ``scheme`` may be a Scheme, a registered name or a config mapping; ``module`` a class, a
    string or a list of them (stored as a tuple of strings); ``ndim`` an int or a tuple of
    ints; ``shape`` a tuple whose ``None`` (or ``"*"``) entries are wildcards. ``id`` labels the
    rule in reports; a Policy assigns ``"rule[<index>]"`` when it is None.

    Args:
        scheme: the scheme to apply; in a mapping, float parameters may be expressions of the
            model's quantities (``{"name": "normal", "std": "0.02 / sqrt(2 * n_layer)"}``,
            :mod:`initlab.policy.expressions`), evaluated when the policy is planned.
        module: module types (classes, names or dotted paths; subclasses match).
        name: a pattern on the owning module's qualified name.
        param: a pattern on the parameter's own name.
        ndim: the parameter's rank, or several.
        shape: exact sizes (None entries are wildcards).
        block: one block of a packed parameter (``"f"``, ``"q"``...).
        role: the parameter's role in the layer registry (``"norm_scale"``, ``"embedding"``...).
        id: the rule's label in reports.

    Example:
        >>> from torch import nn
        >>> rule = Rule({"name": "constant", "val": 1.0}, module=nn.LSTM, param="bias_*", block="f")
        >>> rule.to_dict()  # doctest: +NORMALIZE_WHITESPACE
        {'scheme': {'name': 'constant', 'val': 1.0}, 'module': ['torch.nn.LSTM'],
         'param': 'bias_*', 'block': 'f'}
        >>> Rule.from_dict({"scheme": "normal", "params": {"std": 0.02}, "ndim": 2}).scheme
        Normal(mean=0.0, std=0.02)
    """

    scheme: Scheme | SchemeTemplate
    module: tuple[str, ...] | None = None
    name: str | None = None
    param: str | None = None
    ndim: int | tuple[int, ...] | None = None
    shape: tuple[int | None, ...] | None = None
    block: str | None = None
    id: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        with at("scheme"):
            set_("scheme", as_scheme(self.scheme))
        if self.module is not None:
            with at("module"):
                set_("module", _module_spec(self.module))
        for key in ("name", "param"):
            if getattr(self, key) is not None:
                with at(key):
                    compile_pattern(getattr(self, key))
        if self.ndim is not None:
            with at("ndim"):
                nd = _int_tuple(self.ndim, "an int or list of ints")
            set_("ndim", nd if isinstance(self.ndim, (list, tuple)) else self.ndim)
        if self.shape is not None:
            with at("shape"):
                set_("shape", _int_tuple(self.shape, "a list of ints (null or '*': any)", True))
        for key in ("block", "id"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, str) or not v):
                raise PolicyError(f"expected a non-empty string, got {v!r}", key)
        if self.role is not None and self.role not in ROLES:
            raise PolicyError(
                f"unknown role {self.role!r}{did_you_mean(str(self.role), ROLES)}; roles are: "
                f"{', '.join(ROLES)}",
                "role",
            )

    def matches(self, info: ParamInfo) -> bool:
        """Whether every criterion holds; a block rule also needs the parameter to have its block.

        ``block`` is otherwise ignored: which blocks a rule fills is :meth:`Policy.resolve`'s job.
        """
        if self.block is not None and self.block not in info.block_names:
            return False
        if self.role is not None and info.role != self.role:
            return False
        if self.ndim is not None:
            nd = (self.ndim,) if isinstance(self.ndim, int) else self.ndim
            if len(info.shape) not in nd:
                return False
        if self.shape is not None and (
            len(info.shape) != len(self.shape)
            or any(w is not None and w != n for w, n in zip(self.shape, info.shape, strict=True))
        ):
            return False
        if self.param is not None and not pattern_matches(self.param, info.param_name):
            return False
        if self.name is not None and not pattern_matches(self.name, info.module_name):
            return False
        return self.module is None or any(type_matches(m, info.module_type) for m in self.module)

    def to_dict(self, omit_id: bool = False) -> dict[str, Any]:
        """File data: ``scheme`` then the match keys that are set (tuples become lists)."""
        out: dict[str, Any] = {"scheme": scheme_to_data(self.scheme)}
        for key in (*_MATCH_KEYS, "id"):
            v = getattr(self, key)
            if v is None or (key == "id" and omit_id):
                continue
            out[key] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Rule:
        """A rule from file data; errors name the key (``"ndim"``, ``"scheme.std"``)."""
        if isinstance(data, Rule):
            return data
        if not isinstance(data, Mapping):
            raise PolicyError(
                f"a rule must be a mapping with 'scheme' and match keys, got {data!r}"
            )
        keys = ["scheme", "params", *_MATCH_KEYS, "id"]
        for key in data:
            if key not in keys:
                raise PolicyError(
                    f"unknown key {key!r}{did_you_mean(str(key), keys)}; a rule's keys are: "
                    f"{', '.join(keys)}"
                )
        if "scheme" not in data:
            raise PolicyError("missing key 'scheme' (the scheme to apply, e.g. scheme: zeros)")
        scheme, params = data["scheme"], data.get("params")
        if params is not None:
            if not isinstance(params, Mapping):
                raise PolicyError(
                    f"expected a mapping of scheme parameters, got {params!r}", "params"
                )
            scheme = {"name": scheme} if isinstance(scheme, str) else scheme
            if not isinstance(scheme, Mapping):
                raise PolicyError("`params` needs `scheme` to be a name or a mapping", "params")
            if set(scheme) & set(params):
                twice = ", ".join(sorted(set(scheme) & set(params)))
                raise PolicyError(f"{twice} given both in scheme and in params", "params")
            scheme = {**scheme, **params}
        try:
            return cls(scheme, **{k: data[k] for k in (*_MATCH_KEYS, "id") if k in data})
        except PolicyError as e:  # a bad parameter given under params: point there
            key = (e.path or "").removeprefix("scheme.")
            if params and e.path and e.path.startswith("scheme.") and key in params:
                raise PolicyError(e.message, f"params.{key}") from None
            raise
