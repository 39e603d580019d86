"""The muP parametrisation of a model: per-parameter init std and LR multipliers, readouts.

Tensor Programs V (Yang et al. 2022, https://arxiv.org/abs/2203.03466), Table 3, written relative
to a base model (``width_mult = fan_in / base fan_in``, see :mod:`.classify`) in the mup
package's form, where a readout's input is multiplied by ``1/width_mult`` at forward time
(``readout="multiplier"``, the default):

=======================  =================  =====================  ===================
kind                     init std           Adam LR mult           SGD LR mult
=======================  =================  =====================  ===================
input (and finite)       base std           1                      width_mult
vector (biases, norms)   base std           1                      width_mult
hidden                   base std/sqrt(wm)  1/wm                   fan_out/fan_in mult
output, with multiplier  base std           1                      wm
output, ``"init"``       base std/wm        1/wm                   1/wm
=======================  =================  =====================  ===================

"base std" is the std the base model gets from the base init (``init``: a preset, e.g. the
family's own ``gpt2``, or ``torch_default``): the model's own scheme is kept and scaled
(``Scaled(scheme, factor)``) so its std is the base's times the width factor. So at the base
width every multiplier is 1 and muP is the base init itself. The mup package gives the same
numbers: its ``set_base_shapes`` + ``mup.init`` + ``MuAdam``/``MuSGD``
(tests/test_mup_reference.py checks it).

Tied input/output embeddings (GPT-2's ``wte``/``lm_head``) follow mup's ``MuSharedReadout``:
the shared weight is input-like for init and LR, and the readout's ``1/width_mult`` multiplier
is applied at the output module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..plan import plan
from ..policy import Policy, PolicyError, Rule
from ..report import ParamRow
from ..schemes import Scheme
from ..schemes.structured import Scaled
from ..specs import load_policy
from .attach import MupHandle, attach
from .attention import AttentionScale, find_attention
from .base import BaseLike, base_model, unwrap
from .classify import Classified, MupError, canonical, classify
from .depth import Depth, find_depth

__all__ = ["OPTIMIZERS", "READOUT_MODES", "Mup", "MupParam", "default_init", "mup"]

OPTIMIZERS = ("adam", "sgd")
READOUT_MODES = ("multiplier", "init")
_GLOB = re.compile(r"[*?\[\]]")


@dataclasses.dataclass(frozen=True)
class MupParam:
    """One parameter under muP.

    Attributes:
        name: canonical qualified name.
        kind: ``"input"``, ``"hidden"``, ``"output"`` or ``"vector"``.
        width_mult: see :mod:`.classify`.
        init_std: the std muP gives it (None: not initialised by muP's policy, or its scheme
            states no std).
        lr_mult_adam, lr_mult_sgd: what the base LR is multiplied by under Adam/AdamW and SGD.
        infinite_dims: the dims that differ from the base's.
        shape, base_shape: global shapes.
        fan_in_mult, fan_out_mult: target / base fans.
        base_std: the base parameter's std under the base init (None: unknown).
        rule: the policy rule id (``"mup-hidden"``), or None when the init leaves it alone.
        readouts: modules where it acts as a readout (a tied embedding's head).
        aliases: its other names (tied parameters).

    Example:
        >>> p = MupParam("fc.weight", "hidden", 4.0, 0.01, 0.25, 1.0, (0, 1), (8, 8), (2, 2))
        >>> MupParam.from_dict(p.to_dict()) == p
        True
    """

    name: str
    kind: str
    width_mult: float
    init_std: float | None
    lr_mult_adam: float
    lr_mult_sgd: float
    infinite_dims: tuple[int, ...]
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    fan_in_mult: float = 1.0
    fan_out_mult: float = 1.0
    base_std: float | None = None
    rule: str | None = None
    readouts: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples as lists).

        Example:
            >>> MupParam("b", "vector", 1.0, 0.0, 1.0, 1.0, (), (3,), (3,)).to_dict()["kind"]
            'vector'
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MupParam:
        """The inverse of :meth:`to_dict`.

        Args:
            data: a dict from :meth:`to_dict`.

        Example:
            >>> MupParam.from_dict({"name": "b", "kind": "vector", "width_mult": 1.0,
            ...     "init_std": None, "lr_mult_adam": 1.0, "lr_mult_sgd": 1.0,
            ...     "infinite_dims": [], "shape": [3], "base_shape": [3]}).shape
            (3,)
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
        )


@dataclasses.dataclass(frozen=True)
class Mup:
    """A model's muP parametrisation (made by :func:`mup`): frozen, JSON round trip, a table.

    Attributes:
        params: canonical parameter name -> :class:`MupParam`.
        readouts: readout module -> input multiplier (1/width_mult), applied by :meth:`attach`.
        attention: one :class:`~.attention.AttentionScale` per attention module.
        notes: where this is not full muP, and why (empty: full muP).
        policy: the init policy (one rule per parameter, ids ``"mup-<kind>"``) for
            ``initlab.initialize``/``materialize``/``write_checkpoint``.
        depth: the depth scaling, or None.
        optimizer: the default optimizer rule of :func:`~initlab.mup_param_groups`.
        init: the base init's name.
        readout: ``"multiplier"`` or ``"init"``.

    Example:
        >>> from torch import nn
        >>> import initlab
        >>> net = lambda w: nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, 10))
        >>> m = initlab.mup(net(256), net(64))
        >>> m.readouts, m.full
        ({'2': 0.25}, True)
        >>> Mup.from_json(m.to_json()) == m
        True
    """

    params: dict[str, MupParam]
    readouts: dict[str, float]
    attention: tuple[AttentionScale, ...]
    notes: tuple[str, ...]
    policy: Policy
    depth: Depth | None = None
    optimizer: str = "adam"
    init: str = "torch_default"
    readout: str = "multiplier"

    @property
    def full(self) -> bool:
        """Whether this is full muP (no notes).

        Example:
            >>> Mup({}, {}, (), ("a note",), Policy()).full
            False
        """
        return not self.notes

    def attach(self, model: nn.Module) -> MupHandle:
        """Register the readout multipliers (forward pre-hooks), set the attention logit scales
        where settable, and scale residual branches (depth); ``handle.remove()`` undoes all.

        Args:
            model: the model this was made for (compiled, wrapped or sharded is fine).

        Returns:
            The :class:`~.attach.MupHandle`.

        Example:
            >>> import torch, initlab
            >>> from torch import nn
            >>> net = lambda w: nn.Sequential(nn.Linear(8, w), nn.Linear(w, 2, bias=False))
            >>> model = net(32)
            >>> m = initlab.mup(model, net(8))
            >>> x = torch.randn(3, 8)
            >>> plain = model(x)
            >>> handle = m.attach(model)
            >>> torch.equal(model(x), plain / 4)
            True
            >>> handle.remove(); torch.equal(model(x), plain)
            True
        """
        branches = {}
        if self.depth is not None:
            branches = {b: self.depth.branch_mult for b in self.depth.branches}
        return attach(model, self.readouts, self.attention, branches)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (:meth:`from_dict` inverts it).

        Example:
            >>> sorted(Mup({}, {}, (), (), Policy()).to_dict())[:3]
            ['attention', 'depth', 'init']
        """
        return {
            "params": {n: p.to_dict() for n, p in self.params.items()},
            "readouts": dict(self.readouts),
            "attention": [a.to_dict() for a in self.attention],
            "notes": list(self.notes),
            "policy": self.policy.to_dict(),
            "depth": None if self.depth is None else self.depth.to_dict(),
            "optimizer": self.optimizer,
            "init": self.init,
            "readout": self.readout,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Mup:
        """The inverse of :meth:`to_dict`.

        Args:
            data: a dict from :meth:`to_dict`.

        Example:
            >>> m = Mup({}, {"head": 0.5}, (), (), Policy())
            >>> Mup.from_dict(m.to_dict()) == m
            True
        """
        depth = data.get("depth")
        return cls(
            params={n: MupParam.from_dict(p) for n, p in data["params"].items()},
            readouts={n: float(v) for n, v in data["readouts"].items()},
            attention=tuple(AttentionScale(**a) for a in data.get("attention", ())),
            notes=tuple(data.get("notes", ())),
            policy=Policy.from_dict(data["policy"]),
            depth=None
            if depth is None
            else Depth(**{**depth, "branches": tuple(depth["branches"])}),
            optimizer=data.get("optimizer", "adam"),
            init=data.get("init", "torch_default"),
            readout=data.get("readout", "multiplier"),
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text.

        Example:
            >>> Mup({}, {}, (), (), Policy()).to_json().splitlines()[1]
            ' "params": {},'
        """
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Mup:
        """The inverse of :meth:`to_json`.

        Args:
            text: JSON from :meth:`to_json`.

        Example:
            >>> Mup.from_json(Mup({}, {}, (), (), Policy()).to_json()).readouts
            {}
        """
        return cls.from_dict(json.loads(text))

    def table(self) -> str:
        """The per-parameter table, then readouts, attention, depth and notes, as text.

        Example:
            >>> from torch import nn
            >>> import initlab
            >>> m = initlab.mup(nn.Linear(64, 3), nn.Linear(16, 3))
            >>> print(m.table().splitlines()[0])
            parameter  kind    width_mult  init std  Adam LR  SGD LR  readout mult
        """
        head = ("parameter", "kind", "width_mult", "init std", "Adam LR", "SGD LR", "readout mult")
        rows = [head]
        for p in self.params.values():
            mult = ", ".join(f"{self.readouts[r]:.4g}" for r in p.readouts if r in self.readouts)
            std = "-" if p.init_std is None else f"{p.init_std:.4g}"
            rows.append(
                (p.name, p.kind, f"{p.width_mult:.4g}", std, f"{p.lr_mult_adam:.4g}",
                 f"{p.lr_mult_sgd:.4g}", mult or "-")
            )  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        if self.readouts:
            shown = ", ".join(f"{n or '(root)'} x {v:.4g}" for n, v in self.readouts.items())
            lines.append(f"readout multipliers ({self.readout}, on attach): {shown}")
        for a in self.attention:
            lines.append(f"attention {a.module}: {a.reason}")
        if self.depth is not None:
            d = self.depth
            lines.append(
                f"depth ({d.rule}, alpha={d.alpha:g}): L={d.depth} vs base {d.base_depth}; "
                f"{len(d.branches)} branch(es) x {d.branch_mult:.4g}; Adam LR in "
                f"{d.blocks} x {d.lr_mult_adam:.4g}"
            )
        lines.append("full muP" if self.full else "NOT full muP:")
        lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def default_init(model: nn.Module) -> str:
    """The base init ``mup`` uses when none is given: the model's family preset when
    ``hf_auto`` (transformers) or ``timm_auto`` knows it, else ``"torch_default"``.

    Args:
        model: the model.

    Returns:
        A preset name.

    Example:
        >>> from torch import nn
        >>> default_init(nn.Linear(2, 2))
        'torch_default'
    """
    inner = unwrap(model)
    for name in ("hf_auto", "timm_auto"):
        try:
            load_policy(name, model=inner)
        except PolicyError:
            continue
        return name
    return "torch_default"


def _pattern(name: str) -> str:
    return f"re:{re.escape(name)}" if _GLOB.search(name) else name


def _factor(
    scheme: Scheme, fans_t: Any, std_b: float | None, s: float
) -> tuple[Scheme, float | None]:
    """The scheme scaled so its std is ``std_b * s``; (scheme, None) when no std is stated."""
    std_t = scheme.target_std(fans_t)
    if std_b is None or std_t is None:
        return scheme, None
    want = std_b * s
    if std_t == 0.0 or math.isclose(want, std_t, rel_tol=1e-12, abs_tol=0.0):
        return scheme, std_t
    return Scaled(scheme, want / std_t), want


def _init_factor(c: Classified, readout: str) -> float:
    if c.kind == "hidden":
        return 1.0 / math.sqrt(c.fan_in_mult)
    if c.kind == "output" and readout == "init":
        return 1.0 / c.width_mult
    return 1.0


def _lr_mults(c: Classified, readout: str) -> tuple[float, float]:
    if c.kind == "hidden":
        return 1.0 / c.fan_in_mult, c.fan_out_mult / c.fan_in_mult
    if c.kind == "output":
        return (1.0, c.width_mult) if readout == "multiplier" else (1.0 / c.width_mult,) * 2
    return 1.0, c.width_mult  # input and vector: one infinite dim (mup's vector-like)


def _rows(model: nn.Module, policy: Policy) -> dict[str, ParamRow]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # guessed fans are listed by plan's own users
        report = plan(model, policy)
    return {canonical(r.qualname): r for r in report.rows}


def mup(
    model: nn.Module,
    base: BaseLike,
    *,
    init: str | Policy | None = None,
    optimizer: str = "adam",
    depth: str | None = None,
    delta: BaseLike | None = None,
    readout: str = "multiplier",
    attention: str = "base",
    depth_branches: tuple[str, ...] | None = None,
) -> Mup:
    """The muP parametrisation of ``model`` relative to ``base`` (see the module doc).

    Classification uses parameter names and global shapes only, so ``model`` may be on meta,
    sharded with FSDP2, compiled, or loaded from a state_dict.

    Args:
        model: the model (on any device, meta included).
        base: a base model (built on meta is fine), a base config, or a
            ``{dim_name: base_size}`` map (:mod:`.base`).
        init: the base init (a preset name, a scheme or a Policy); default
            :func:`default_init`.
        optimizer: ``"adam"`` (Adam/AdamW) or ``"sgd"``: the default of
            :func:`~initlab.mup_param_groups`.
        depth: None, ``"sqrt"`` (Depth-muP) or ``"complete"`` (CompleteP), see :mod:`.depth`.
        delta: optionally the model at a third width (same forms as ``base``), as mup's
            ``set_base_shapes(delta=...)``: the infinite dims are those where it differs from
            the base, so a model at the base's width is labelled right too.
        readout: ``"multiplier"`` (mup's MuReadout form; needs :meth:`Mup.attach`) or
            ``"init"`` (Table 3 as printed: output std and LR divided by width_mult, no hook;
            tied embeddings still need the multiplier).
        attention: ``"base"`` (logit scale sqrt(d_base)/d) or ``"1/d"``, see :mod:`.attention`.
        depth_branches: with ``depth``, glob patterns of the residual branches' last layers
            relative to a block.

    Returns:
        The :class:`Mup`.

    Raises:
        MupError: a base that does not match the model, or a bad argument.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> net = lambda w: nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, w),
        ...                               nn.ReLU(), nn.Linear(w, 10))
        >>> with initlab.meta_build():
        ...     base = net(64)
        >>> m = initlab.mup(net(256), base)
        >>> [(n, p.kind, p.lr_mult_adam) for n, p in m.params.items() if n.endswith("weight")]
        [('0.weight', 'input', 1.0), ('2.weight', 'hidden', 0.25), ('4.weight', 'output', 1.0)]
        >>> m.readouts
        {'4': 0.25}
    """
    if optimizer not in OPTIMIZERS:
        raise MupError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if readout not in READOUT_MODES:
        raise MupError(f"readout must be one of {', '.join(READOUT_MODES)}, got {readout!r}")
    ref = base_model(model, base)
    table = classify(model, ref, None if delta is None else base_model(model, delta))
    notes: list[str] = []
    init_name = init if isinstance(init, str) else getattr(init, "name", None) or "custom"
    if init is None:
        init_name = default_init(model)
    source = init_name if init is None or isinstance(init, str) else init
    try:
        pol_t = load_policy(source, model=unwrap(model))
        pol_b = load_policy(source, model=ref)
    except PolicyError as e:
        raise MupError(f"init {init_name!r}: {e}") from None
    rows_t, rows_b = _rows(model, pol_t), _rows(ref, pol_b)
    dep = None if depth is None else find_depth(model, ref, depth, depth_branches)
    in_blocks = f"{dep.blocks}." if dep is not None else None

    rules: list[Rule] = []
    params: dict[str, MupParam] = {}
    readouts: dict[str, float] = {}
    no_std: list[str] = []
    left: list[str] = []
    for name, c in table.items():
        row_t, row_b = rows_t[name], rows_b[c.base_name]
        mode = readout if not (c.kind == "input" and c.readouts) else "multiplier"
        if c.kind == "output" and readout == "init" and c.aliases:
            mode = "multiplier"
        s = _init_factor(c, mode)
        std: float | None = None
        rule_id: str | None = None
        if row_t.status == "planned" and row_t.scheme is not None:
            rule_id = f"mup-{c.kind}"
            for o_t, o_b in zip(row_t.overrides(), row_b.overrides(), strict=True):
                scheme, _ = _factor(o_t.scheme, o_t.fans, o_b.scheme.target_std(o_b.fans), s)
                rules.append(
                    Rule(scheme, name=_pattern(row_t.module_name), param=_pattern(row_t.param_name),
                         block=o_t.block.name, id=rule_id)
                )  # fmt: skip
            scheme, std = _factor(row_t.scheme, row_t.fans, row_b.target_std, s)
            if std is None:
                no_std.append(name)
            rules.append(
                Rule(scheme, name=_pattern(row_t.module_name), param=_pattern(row_t.param_name),
                     id=rule_id)
            )  # fmt: skip
        else:
            left.append(name)
        adam, sgd = _lr_mults(c, mode)
        if dep is not None and name.startswith(in_blocks or ""):
            adam *= dep.lr_mult_adam
        if mode == "multiplier":
            for r in c.readouts if c.kind in ("output", "input") else ():
                mult = 1.0 / c.width_mult
                if r in readouts and readouts[r] != mult:
                    raise MupError(
                        f"readout {r!r} has parameters with different width multipliers "
                        f"({1 / readouts[r]:g} and {c.width_mult:g}); muP needs one per module"
                    )
                readouts[r] = mult
        params[name] = MupParam(
            name=name,
            kind=c.kind,
            width_mult=c.width_mult,
            init_std=std,
            lr_mult_adam=adam,
            lr_mult_sgd=sgd,
            infinite_dims=c.infinite_dims,
            shape=c.shape,
            base_shape=c.base_shape,
            fan_in_mult=c.fan_in_mult,
            fan_out_mult=c.fan_out_mult,
            base_std=row_b.target_std if rule_id else None,
            rule=rule_id,
            readouts=c.readouts if mode == "multiplier" else (),
            aliases=c.aliases,
        )
    att = find_attention(model, ref, attention)
    unset: dict[str, list[str]] = {}
    for a in att:
        if not a.settable:
            unset.setdefault(a.reason, []).append(a.module)
    for reason, names in unset.items():
        notes.append(f"attention {', '.join(names)}: {reason}")
    if left:
        notes.append(
            f"the init {init_name!r} leaves {len(left)} parameter(s) alone (no rule, or "
            f"excluded), so muP does not set their init: {', '.join(left[:6])}"
            f"{' ...' if len(left) > 6 else ''}"
        )
    if dep is None and any(c.base_name != c.name for c in table.values()):
        notes.append(
            "the model has more blocks than the base (their parameters are compared with the "
            "base's block 0): muP scales width only; for depth transfer pass depth='sqrt' "
            "(Depth-muP) or 'complete' (CompleteP)"
        )
    guessed = [c.name for c in table.values() if c.guessed]
    if guessed:
        notes.append(
            f"{', '.join(guessed[:6])}: layer(s) the layer registry does not know, fans guessed "
            "from the shape (dim 1 in, dim 0 out); check their kinds, or register the layer "
            "(initlab.register_layer)"
        )
    if no_std:
        notes.append(
            f"the schemes of {', '.join(no_std[:6])} state no std, so their init is the model's "
            "own, not rescaled from the base"
        )
    policy = Policy(
        rules=tuple(rules),
        name=f"mup({init_name})",
        description="muP init: the base init's stds scaled by width (initlab.mup)",
    )
    return Mup(
        params=params,
        readouts=readouts,
        attention=tuple(att),
        notes=tuple(notes),
        policy=policy,
        depth=dep,
        optimizer=optimizer,
        init=init_name,
        readout=readout,
    )
