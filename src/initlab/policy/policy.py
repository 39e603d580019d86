"""A policy: an ordered list of rules, what to do with unmatched parameters, and exclusions.

Matching semantics
------------------
* Rules are tried **in order and the first match wins**: a parameter gets the scheme of the
  first rule without ``block`` that matches it (:attr:`Resolution.rule`).
* A **packed parameter** (blocks from :func:`initlab.compute_fans`: MultiheadAttention q, k, v;
  LSTM i, f, g, o; GRU r, z, n) is decided block by block: each block takes its value from the
  first rule, in order, that matches the parameter and either has no ``block`` or names that
  block. So a block rule placed *before* a whole-parameter rule overrides that one block, and a
  block rule placed after the whole rule that already matched is never used. Blocks whose
  first such rule is a block rule are listed in :attr:`Resolution.block_rules`; the other
  blocks follow :attr:`Resolution.rule`. A block rule naming a block the parameter lacks does
  not match at all. Example, the LSTM forget-gate bias set to 1 (Jozefowicz et al. 2015)::

      Policy(rules=(
          Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
          Rule("zeros", module="LSTM", param="bias_*"),
          Rule("orthogonal", module="LSTM", param="weight_hh_*"),
      ))

* ``exclude`` lists qualified **parameter** names (globs or ``re:``) that the policy skips
  entirely, e.g. weights loaded from a checkpoint (:meth:`Policy.is_excluded`).
* A parameter that no rule matches is **unmatched**: ``unmatched="leave"`` keeps its values,
  ``"default"`` applies ``default``, ``"error"`` refuses (:meth:`Policy.unmatched_scheme`).

Rules without ``id`` are labelled ``"rule[<index>]"`` by the policy, for reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..schemes.base import Scheme
from ..syntax import did_you_mean
from .errors import PolicyError, at
from .expressions import ExpressionError, SchemeTemplate
from .patterns import compile_pattern, pattern_matches
from .rules import ParamInfo, Rule, as_scheme, scheme_to_data

__all__ = ["UNMATCHED", "Policy", "Resolution"]

UNMATCHED = ("leave", "default", "error")
_KEYS = ("name", "description", "unmatched", "default", "exclude", "rules")


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Which rules decide one parameter (see the module doc).

    Attributes:
        rule_index: index of the first rule without ``block`` that matches (None: unmatched).
        rule: that rule.
        block_rules: ``(block name, rule index, rule)`` for each block whose first matching
            rule is a block rule, in the parameter's block order.

    Example:
        >>> import torch
        >>> policy = Policy(rules=(
        ...     Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
        ...     Rule("zeros", module="LSTM", param="bias_*"),
        ...     Rule("orthogonal", module="LSTM", param="weight_hh_*"),
        ... ), exclude=("head.*",))
        >>> info = ParamInfo("rnn.bias_ih_l0", "rnn", "bias_ih_l0", torch.nn.LSTM, (32,),
        ...                  ("i", "f", "g", "o"))
        >>> res = policy.resolve(info)  # zeros, but the forget gate's block from rule[0]
        >>> res.rule.id, [(block, index) for block, index, _ in res.block_rules], res.matched
        ('rule[1]', [('f', 0)], True)
    """

    rule_index: int | None
    rule: Rule | None
    block_rules: tuple[tuple[str, int, Rule], ...] = ()

    @property
    def matched(self) -> bool:
        """Whether any rule applies to the parameter (whole or to some block)."""
        return self.rule is not None or bool(self.block_rules)

    def covers(self, block_names: tuple[str, ...]) -> bool:
        """Whether every block (or the whole parameter, when unpacked) gets a rule."""
        if self.rule is not None:
            return True
        done = {b for b, _, _ in self.block_rules}
        return bool(block_names) and all(b in done for b in block_names)


def _auto_id(index: int) -> str:
    return f"rule[{index}]"


@dataclasses.dataclass(frozen=True)
class Policy:
    """An ordered list of :class:`Rule` and what to do with the parameters they miss.

    Args:
        rules: the rules, in priority order (Rules or rule mappings as in a policy file).
        unmatched: ``"leave"`` (keep the values), ``"default"`` (apply ``default``) or
            ``"error"`` for parameters no rule matches.
        default: the scheme for unmatched parameters; required iff ``unmatched="default"``.
        exclude: qualified parameter name patterns the policy never touches.
        name, description: labels for reports and files.

    Example:
        >>> import torch
        >>> policy = Policy(rules=(
        ...     Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
        ...     Rule("zeros", module="LSTM", param="bias_*"),
        ...     Rule("orthogonal", module="LSTM", param="weight_hh_*"),
        ... ), exclude=("head.*",))
        >>> info = ParamInfo("rnn.bias_ih_l0", "rnn", "bias_ih_l0", torch.nn.LSTM, (32,),
        ...                  ("i", "f", "g", "o"))
        >>> policy.resolve(info).rule.scheme, policy.is_excluded("head.weight")
        (Zeros(), True)
        >>> policy.to_dict()["rules"][0]
        {'scheme': {'name': 'constant', 'val': 1.0}, 'module': ['LSTM'], 'param': 'bias_*',
         'block': 'f'}
        >>> Policy.from_dict(policy.to_dict()) == policy
        True
    """

    rules: tuple[Rule, ...] = ()
    unmatched: str = "leave"
    default: Scheme | SchemeTemplate | None = None
    exclude: tuple[str, ...] = ()
    name: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        rules = self.rules
        if isinstance(rules, (Rule, Mapping)) or not isinstance(rules, (list, tuple)):
            raise PolicyError(f"expected a list of rules, got {rules!r}", "rules")
        out = []
        for i, r in enumerate(rules):
            try:
                r = Rule.from_dict(r)
            except PolicyError as e:
                raise e.within(f"rules[{i}]") from None
            out.append(r if r.id is not None else dataclasses.replace(r, id=_auto_id(i)))
        set_(self, "rules", tuple(out))
        if self.unmatched not in UNMATCHED:
            raise PolicyError(
                f"must be one of {', '.join(UNMATCHED)}, got {self.unmatched!r}", "unmatched"
            )
        if self.default is not None:
            if self.unmatched != "default":
                raise PolicyError(
                    f"only used when unmatched is 'default' (it is {self.unmatched!r}); set "
                    f"unmatched: default, or remove default",
                    "default",
                )
            try:
                set_(self, "default", as_scheme(self.default))
            except PolicyError as e:
                raise e.within("default") from None
        elif self.unmatched == "default":
            raise PolicyError(
                "required when unmatched is 'default'; give the scheme for unmatched parameters "
                "(e.g. default: torch_default) or choose unmatched: leave",
                "default",
            )
        exclude = self.exclude
        if isinstance(exclude, str):
            exclude = (exclude,)
        if not isinstance(exclude, (list, tuple)):
            raise PolicyError(
                f"expected a list of parameter name patterns, got {exclude!r}", "exclude"
            )
        for i, pattern in enumerate(exclude):
            try:
                compile_pattern(pattern)
            except PolicyError as e:
                raise e.within(f"exclude[{i}]") from None
        set_(self, "exclude", tuple(exclude))
        for key in ("name", "description"):
            v = getattr(self, key)
            if v is not None and not isinstance(v, str):
                raise PolicyError(f"expected a string, got {v!r}", key)

    # -- matching ------------------------------------------------------------------------
    def resolve(self, info: ParamInfo) -> Resolution:
        """The rules that decide the parameter ``info`` (first match wins, block by block)."""
        hits = [r.matches(info) for r in self.rules]
        index = next((i for i, r in enumerate(self.rules) if hits[i] and r.block is None), None)
        blocks: list[tuple[str, int, Rule]] = []
        for b in info.block_names:
            for i, r in enumerate(self.rules):
                if hits[i] and r.block in (None, b):
                    if r.block is not None:
                        blocks.append((b, i, r))
                    break
        rule = None if index is None else self.rules[index]
        return Resolution(index, rule, tuple(blocks))

    # -- expressions -----------------------------------------------------------------------
    def _templates(self) -> list[tuple[str, SchemeTemplate]]:
        found = [(f"rules[{i}].scheme", r.scheme) for i, r in enumerate(self.rules)]
        found.append(("default", self.default))
        return [(path, s) for path, s in found if isinstance(s, SchemeTemplate)]

    @property
    def has_expressions(self) -> bool:
        """Whether some scheme parameter is an expression of the model's quantities."""
        return bool(self._templates())

    def bind(self, quantities: Mapping[str, float]) -> dict[SchemeTemplate, Scheme]:
        """Each scheme with expressions, evaluated with ``quantities`` (what ``plan`` does with
        :func:`~initlab.policy.quantities.model_quantities` of the model).

        Args:
            quantities: ``{name: number}``.

        Returns:
            ``{template: scheme}`` for every :class:`~initlab.policy.expressions.SchemeTemplate`
            of the rules and the default.

        Raises:
            PolicyError: an expression fails (unknown name, division by zero, math domain,
                non-finite value, a value the scheme refuses); the path names the key.

        Example:
            >>> pol = Policy([Rule({"name": "normal", "std": "0.02 / sqrt(2 * n_layer)"})])
            >>> list(pol.bind({"n_layer": 2}).values())
            [Normal(mean=0.0, std=0.01)]
            >>> pol.bind({"n_layers": 2})
            Traceback (most recent call last):
            ...
            initlab.policy.errors.PolicyError: rules[0].scheme.std: expression ... unknown name ...
        """
        out: dict[SchemeTemplate, Scheme] = {}
        for path, template in self._templates():
            if template in out:
                continue
            try:
                out[template] = template.bind(quantities)
            except ExpressionError as e:
                raise PolicyError(e.message, f"{path}.{e.key}" if e.key else path) from None
        return out

    def is_excluded(self, qualname: str) -> bool:
        """Whether the parameter ``qualname`` matches an ``exclude`` pattern."""
        return any(pattern_matches(p, qualname) for p in self.exclude)

    def unmatched_scheme(self, info: ParamInfo) -> Scheme | None:
        """What an unmatched parameter gets: None ("leave"), ``default``, or PolicyError."""
        if self.unmatched == "default":
            return self.default
        if self.unmatched == "error":
            where = f" of policy {self.name!r}" if self.name else ""
            raise PolicyError(
                f"no rule{where} matches parameter {info.qualname!r} ({info.module_type.__name__}"
                f".{info.param_name}, shape {tuple(info.shape)}); add a rule for it, exclude it, "
                f"or set unmatched to 'leave' or 'default'",
                "unmatched",
            )
        return None

    def rule_label(self, index: int) -> str:
        """The label of rule ``index`` for reports (its ``id``)."""
        return self.rules[index].id or _auto_id(index)

    # -- composition ---------------------------------------------------------------------
    def then(self, other: Policy) -> Policy:
        """A policy trying this one's rules first, then ``other``'s.

        ``exclude`` is the union. ``unmatched``/``default`` are this policy's unless it leaves
        unmatched parameters (the default), then ``other``'s. Names join with ``" + "``.
        Automatic ids (``"rule[<i>]"``) of ``other``'s rules are renumbered.
        """
        if not isinstance(other, Policy):
            raise TypeError(f"Policy.then expects a Policy, got {type(other).__name__}")
        theirs = tuple(
            dataclasses.replace(r, id=None) if r.id == _auto_id(i) else r
            for i, r in enumerate(other.rules)
        )
        mine = self if self.unmatched != "leave" else other
        names = [n for n in (self.name, other.name) if n]
        return Policy(
            rules=self.rules + theirs,
            unmatched=mine.unmatched,
            default=mine.default,
            exclude=self.exclude + tuple(p for p in other.exclude if p not in self.exclude),
            name=" + ".join(names) or None,
            description=self.description or other.description,
        )

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, list, dict) in the policy file schema; None omitted."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        out["unmatched"] = self.unmatched
        if self.default is not None:
            with at("default"):
                out["default"] = scheme_to_data(self.default)
        if self.exclude:
            out["exclude"] = list(self.exclude)
        out["rules"] = []
        for i, r in enumerate(self.rules):
            with at(f"rules[{i}]"):
                out["rules"].append(r.to_dict(omit_id=r.id == _auto_id(i)))
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """A policy from file data; raises PolicyError naming the offending key."""
        if isinstance(data, Policy):
            return data
        if not isinstance(data, Mapping):
            raise PolicyError(
                f"a policy must be a mapping with keys {', '.join(_KEYS)}, "
                f"got {type(data).__name__}"
            )
        for key in data:
            if key not in _KEYS:
                raise PolicyError(
                    f"unknown key {key!r}{did_you_mean(str(key), _KEYS)}; a policy's keys are: "
                    f"{', '.join(_KEYS)}",
                    str(key),
                )
        rules = data.get("rules", ())
        if rules is None:
            rules = ()
        if not isinstance(rules, (list, tuple)):
            raise PolicyError(f"expected a list of rules, got {rules!r}", "rules")
        unmatched = data.get("unmatched", "leave")
        return cls(
            rules=tuple(rules),
            unmatched=unmatched,
            default=data.get("default"),
            exclude=() if data.get("exclude") is None else data["exclude"],
            name=data.get("name"),
            description=data.get("description"),
        )
