"""The init report: one row per parameter, rendered as a terminal table, Markdown or JSON.

A row says which rule set the parameter, with which scheme and resolved parameters, its fans
and blocks, the std the scheme targets, the std achieved after init, and the key of its random
stream, so any single parameter can be regenerated from the report alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

from .fans import Block, Fans
from .schemes import Scheme

if TYPE_CHECKING:
    from rich.table import Table

    from .policy import Policy

#: planned: will be written; initialized: was written; unmatched: no rule, left as it was;
#: excluded: skipped on request; partial: a packed parameter (LSTM i/f/g/o...) where block
#: rules cover only some blocks and no whole-parameter rule or default applies. A partial row
#: counts as unmatched (:attr:`InitReport.unmatched`, ``strict=True``, ``unmatched="error"``);
#: ``initialize`` (not strict) fills its covered blocks and leaves the others as they were
#: (the row stays "partial"); ``materialize``, ``write_checkpoint`` and ``regenerate`` refuse
#: it, since the uncovered blocks have no values to keep.
STATUSES = ("planned", "initialized", "unmatched", "excluded", "partial")


@dataclasses.dataclass(frozen=True)
class BlockOverride:
    """One block rule of a packed parameter, resolved: the block, the rule that set it, its
    scheme, and the shape and fans of the block alone (no sub-blocks).

    Attributes:
        block: the block of the packed parameter (e.g. an LSTM's forget gate ``f``).
        rule_id: the id of the rule that set it.
        scheme: the block's scheme.
        shape: the block's own shape.
        fans: the block's own fans.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> pol = initlab.Policy(rules=(
        ...     initlab.Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*",
        ...                  block="f"),
        ...     initlab.Rule("zeros"),
        ... ))
        >>> o = initlab.plan(nn.LSTM(4, 3), pol)["bias_ih_l0"].overrides()[0]
        >>> o.block.name, o.rule_id, o.shape
        ('f', 'rule[0]', (3,))
    """

    block: Block
    rule_id: str
    scheme: Scheme
    shape: tuple[int, ...]
    fans: Fans


@dataclasses.dataclass(frozen=True)
class ParamRow:
    """What happens (or happened) to one parameter: one row of an :class:`InitReport`.

    Attributes:
        qualname: the parameter's qualified name (``"0.weight"``); its random stream's name.
        module_name: the owning module's qualified name.
        param_name: the parameter's name in that module.
        module_type: the module's class path.
        shape: the parameter's shape.
        dtype: its dtype, as text.
        device: its device, as text.
        status: one of :data:`STATUSES` (planned, initialized, unmatched, excluded, partial).
        rule_id: the rule that set it (``"rule[1]"``, ``"default"``), or None.
        scheme: the scheme that fills it, or None.
        block_overrides: (block, rule id, scheme) for blocks set by block rules.
        fans: its fans (layer-aware, with blocks), or None.
        aliases: other names of a tied parameter.
        seed: the seed its stream is keyed by.
        target_std: the std the scheme targets (None: undefined).
        achieved_std: the std measured after the fill (None: not filled).
        expressions: ``(rule id, parameter, text)`` for each scheme parameter the policy gave
            as an expression of the model's quantities (its value is in the scheme).

    Example:
        >>> import torch, initlab
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
        >>> policy = initlab.Policy(rules=(
        ...     initlab.Rule("zeros", param="bias"),
        ...     initlab.Rule({"name": "kaiming_normal", "nonlinearity": "relu"}, module="Linear"),
        ... ))
        >>> report = initlab.initialize(model, policy, seed=0)
        >>> row = report["0.weight"]
        >>> row.status, row.rule_id, row.fans.fan_in, round(row.target_std, 4)  # sqrt(2 / 4)
        ('initialized', 'rule[1]', 4, 0.7071)
        >>> row.to_dict()["scheme"]
        {'name': 'kaiming_normal', 'a': 0.0, 'mode': 'fan_in', 'nonlinearity': 'relu'}
    """

    qualname: str
    module_name: str
    param_name: str
    module_type: str
    shape: tuple[int, ...]
    dtype: str
    device: str
    status: str = "planned"
    rule_id: str | None = None
    scheme: Scheme | None = None
    block_overrides: tuple[tuple[str, str, Scheme], ...] = ()
    fans: Fans | None = None
    aliases: tuple[str, ...] = ()
    seed: int | None = None
    target_std: float | None = None
    achieved_std: float | None = None
    expressions: tuple[tuple[str, str, str], ...] = ()

    @property
    def guessed(self) -> bool:
        """Whether the fans are a guess: the layer (or this parameter of it) is not in the layer
        registry and torch's shape rule stood in (``fans.rule == "shape-fallback"``)."""
        return self.fans is not None and self.fans.rule == "shape-fallback"

    @property
    def stream_name(self) -> str:
        """The name the parameter's random stream is keyed by (its qualified name)."""
        return self.qualname

    def overrides(self) -> list[BlockOverride]:
        """The block overrides with their :class:`~initlab.fans.Block`, block shape and fans.

        Example:
            >>> import initlab
            >>> from torch import nn
            >>> pol = initlab.Policy(rules=(
            ...     initlab.Rule({"name": "constant", "val": 1.0}, param="bias_*", block="f"),
            ...     initlab.Rule("zeros", param="*bias*")))
            >>> row = initlab.plan(nn.LSTM(2, 3), pol)["bias_ih_l0"]
            >>> [(o.block.name, o.block.start, o.shape) for o in row.overrides()]
            [('f', 3, (3,))]
        """
        out = []
        for name, rule_id, scheme in self.block_overrides:
            assert self.fans is not None  # block rules only match parameters with blocks
            blk = _block(self.fans, name)
            shape = list(self.shape)
            shape[blk.dim] = blk.size
            fans = dataclasses.replace(self.fans.for_block(blk), blocks=())
            out.append(BlockOverride(blk, rule_id, scheme, tuple(shape), fans))
        return out

    def schemes(self) -> list[tuple[str, Scheme]]:
        """(rule label, scheme) of the row's own scheme and of each block override."""
        own = [] if self.scheme is None else [(self.rule_id or "?", self.scheme)]
        return own + [(f"{o.rule_id} (block {o.block.name})", o.scheme) for o in self.overrides()]

    @property
    def free_blocks(self) -> tuple[str, ...]:
        """The blocks no block rule sets (all of them without overrides; () unpacked)."""
        over = {o.block.name for o in self.overrides()}
        return tuple(b.name for b in (self.fans.blocks if self.fans else ()) if b.name not in over)

    @property
    def std_blocks(self) -> tuple[str, ...] | None:
        """The blocks that target and achieved std describe: those the row's own scheme
        filled, when block overrides set others (None: the whole parameter)."""
        return self.free_blocks if self.block_overrides else None

    @property
    def override_rules(self) -> str:
        """The rule ids of the block overrides, comma-separated ("" without overrides)."""
        return ", ".join(o.rule_id for o in self.overrides())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the row (scheme as its config, fans as numbers)."""
        fans = self.fans
        return {
            "name": self.qualname,
            "module": self.module_name,
            "param": self.param_name,
            "module_type": self.module_type,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "status": self.status,
            "rule": self.rule_id,
            "scheme": None if self.scheme is None else self.scheme.to_config(),
            "block_overrides": [
                {"block": o.block.name, "rule": o.rule_id, "scheme": o.scheme.to_config()}
                for o in self.overrides()
            ],
            "fan_in": None if fans is None else fans.fan_in,
            "fan_out": None if fans is None else fans.fan_out,
            "fans_rule": None if fans is None else fans.rule,
            "guessed": self.guessed,
            "blocks": [] if fans is None else [b.name for b in fans.blocks],
            "aliases": list(self.aliases),
            "seed": self.seed,
            "stream": self.stream_name,
            "target_std": _num(self.target_std),
            "achieved_std": _num(self.achieved_std),
            "std_blocks": None if self.std_blocks is None else list(self.std_blocks),
            "expressions": [
                {"rule": rule, "param": key, "text": text} for rule, key, text in self.expressions
            ],
        }


def _block(fans: Fans, name: str) -> Block:
    for b in fans.blocks:
        if b.name == name:
            return b
    raise KeyError(f"no block {name!r} in {[b.name for b in fans.blocks]}")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


@dataclasses.dataclass(repr=False)
class InitReport:
    """Rows for every parameter of a model, in ``named_parameters`` order (tied ones once).

    Returned by :func:`initlab.initialize` and :func:`initlab.plan`. Index it by a parameter's
    name; print it for a table, or use :meth:`to_markdown`, :meth:`to_json`.

    Attributes:
        rows: one :class:`ParamRow` per parameter.
        seed: the seed the values are keyed by (None: torch's generator).
        policy: the policy that was applied.
        rng: ``"keyed"`` (streams keyed by seed and name) or ``"torch"``.
        notes: remarks about the fill.

    Example:
        >>> import torch, initlab
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
        >>> policy = initlab.Policy(rules=(
        ...     initlab.Rule("zeros", param="bias"),
        ...     initlab.Rule({"name": "kaiming_normal", "nonlinearity": "relu"}, module="Linear"),
        ... ))
        >>> report = initlab.initialize(model, policy, seed=0)
        >>> len(report), report.unmatched
        (2, [])
        >>> print(report.to_markdown())  # doctest: +ELLIPSIS
        | parameter | shape | status | rule | scheme | fan in/out | blocks | target std | ...
        |---|---|---|---|---|---|---|---|---|
        | 0.weight | 3x4 | initialized | rule[1] | kaiming_normal(... | 4/3 | - | 0.7071 | ... |
        | 0.bias | 3 | initialized | rule[0] | zeros() | 4/3 | - | 0 | 0 |
        <BLANKLINE>
    """

    rows: list[ParamRow]
    seed: int | None
    policy: Policy | None = None
    rng: str = "keyed"
    #: remarks about the fill, e.g. sharded parameters that were generated as a full tensor
    notes: list[str] = dataclasses.field(default_factory=list)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, qualname: str) -> ParamRow:
        for r in self.rows:
            if r.qualname == qualname or qualname in r.aliases:
                return r
        raise KeyError(f"no parameter {qualname!r} in this report")

    @property
    def unmatched(self) -> list[str]:
        """Parameters no rule fully covers: status "unmatched" or "partial"."""
        return [r.qualname for r in self.rows if r.status in ("unmatched", "partial")]

    @property
    def excluded(self) -> list[str]:
        """Parameters skipped on request (status "excluded")."""
        return [r.qualname for r in self.rows if r.status == "excluded"]

    @property
    def guessed(self) -> list[str]:
        """Parameters to be written with guessed fans (a layer the registry does not know)."""
        return [r.qualname for r in self.rows if r.guessed and r.status != "excluded"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: seed, rng, policy, parameters, unmatched, excluded, guessed,
        notes."""
        return {
            "seed": self.seed,
            "rng": self.rng,
            "policy": None if self.policy is None else self.policy.to_dict(),
            "parameters": [r.to_dict() for r in self.rows],
            "unmatched": self.unmatched,
            "excluded": self.excluded,
            "guessed": self.guessed,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (``indent`` as in ``json.dumps``)."""
        return json.dumps(self.to_dict(), indent=indent)

    def _cells(self, r: ParamRow) -> list[str]:
        scheme = "; ".join(
            ([] if r.scheme is None else [_scheme_text(r.scheme, _texts(r, r.rule_id))])
            + [
                _override_text(o.block.name, o.rule_id, o.scheme, _texts(r, o.rule_id))
                for o in r.overrides()
            ]
        )
        over = "" if r.std_blocks is None else f" ({','.join(r.std_blocks)})"
        target = _fmt(r.target_std) + (over if r.target_std is not None else "")
        achieved = _fmt(r.achieved_std) + (over if r.achieved_std is not None else "")
        fans = "-" if r.fans is None else f"{r.fans.fan_in}/{r.fans.fan_out}"
        if r.guessed:
            fans += " (guessed)"
        blocks = (
            "-" if r.fans is None or not r.fans.blocks else ",".join(b.name for b in r.fans.blocks)
        )
        name = r.qualname + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
        return [
            name, "x".join(map(str, r.shape)) or "scalar", r.status, r.rule_id or "-", scheme,
            fans, blocks, target, achieved,
        ]  # fmt: skip

    HEADERS = ("parameter", "shape", "status", "rule", "scheme", "fan in/out", "blocks",
               "target std", "achieved std")  # fmt: skip

    def table(self, title: str | None = None) -> Table:
        """The report as a ``rich`` table (what ``print(report)`` shows)."""
        from rich.table import Table

        pol = self.policy.name if self.policy is not None and self.policy.name else "policy"
        t = Table(title=title or f"init report: {pol}, seed {self.seed}")
        longest = max((len(self._cells(r)[0]) for r in self.rows), default=10)
        for h in self.HEADERS:
            if h == "parameter":  # names stay whole: they are what people search for
                t.add_column(h, no_wrap=True, min_width=min(longest, 80))
            else:
                t.add_column(h, overflow="fold")
        from rich.markup import escape

        for r in self.rows:
            style = {"unmatched": "yellow", "partial": "yellow", "excluded": "dim"}.get(r.status)
            style = style or ("yellow" if r.guessed else None)
            t.add_row(*(escape(c) for c in self._cells(r)), style=style)
        return t

    def __rich__(self) -> Table:
        return self.table()

    def to_markdown(self) -> str:
        """The report as a Markdown table, then unmatched parameters and notes."""
        lines = ["| " + " | ".join(self.HEADERS) + " |", "|" + "---|" * len(self.HEADERS)]
        for r in self.rows:
            cells = [c.replace("|", "\\|") for c in self._cells(r)]
            lines.append("| " + " | ".join(cells) + " |")
        if self.unmatched:
            lines.append("")
            lines.append(f"Unmatched (left as they were): {', '.join(self.unmatched)}")
        if self.guessed:
            lines.append("")
            lines.append(
                "Guessed fans (layer not in the registry, torch's shape rule used): "
                + ", ".join(self.guessed)
            )
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=200, record=True, file=_NullFile())
        console.print(self.table())
        return console.export_text()

    def summary(self) -> str:
        """One line: parameter and value counts per status, the policy, seed and random source.

        Example:
            >>> import torch, initlab
            >>> initlab.plan(torch.nn.Linear(4, 3), "kaiming", seed=0)
            <InitReport: 2 parameters (15 values): 2 planned; policy kaiming, seed 0, rng keyed>
        """
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        n = sum(math.prod(r.shape) for r in self.rows)
        pol = self.policy.name if self.policy is not None and self.policy.name else "custom"
        parts = ", ".join(f"{c} {k}" for k, c in counts.items())
        line = (f"{len(self.rows)} parameters ({n:,} values): {parts}; policy {pol}, "
                f"seed {self.seed}, rng {self.rng}")  # fmt: skip
        if self.guessed:
            line += f"; {len(self.guessed)} with guessed fans"
        return line

    # a shell or notebook shows one line, not every row (print() shows the table)
    def __repr__(self) -> str:
        return f"<InitReport: {self.summary()}>"

    def _repr_html_(self) -> str:
        import html

        return (f"<p><b>InitReport</b>: {html.escape(self.summary())}<br><i>print(report) "
                "for the table, report.to_markdown() for Markdown</i></p>")  # fmt: skip


class _NullFile:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


#: the value of a constant scheme, by name (zeros, ones, constant(val=...))
_CONSTANTS = {"zeros": lambda s: 0.0, "ones": lambda s: 1.0, "constant": lambda s: s.val}


def _texts(row: ParamRow, rule: str | None) -> dict[str, str]:
    """The expressions the policy gave for the scheme of ``rule`` in ``row``, by parameter."""
    return {key: text for rid, key, text in row.expressions if rid == rule}


def _override_text(block: str, rule: str, s: Scheme, texts: dict[str, str]) -> str:
    """A block override as such: ``block f = 1 (override, rule[0])``, or the scheme."""
    value = _CONSTANTS.get(s.name)
    what = f" = {value(s):g}" if value is not None and not texts else f": {_scheme_text(s, texts)}"
    return f"block {block}{what} (override, {rule})"


def _scheme_text(s: Scheme, texts: dict[str, str] | None = None) -> str:
    """``normal(mean=0.0, std=0.02)``; a parameter given as an expression shows it and its
    value: ``std=0.02 / sqrt(2 * n_layer) = 0.01``."""
    texts = texts or {}
    params = ", ".join(
        f"{k}={texts[k]} = {v:.4g}" if k in texts else f"{k}={v!r}" for k, v in s.params().items()
    )
    return f"{s.name}({params})"
