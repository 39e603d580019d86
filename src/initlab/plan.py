"""Planning: which rule sets each parameter, with which scheme, fans and random key.

``plan(model, policy)`` walks the model's parameters once (tied parameters once), matches each
to a policy rule, computes its layer-aware fans, resolves the scheme and records the key of
its random stream. It touches no tensor, so it works on a model built on the meta device. The
result is an :class:`~initlab.report.InitReport`; ``initialize`` fills the same plan.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from typing import Any

from torch import nn
from torch.nn.parameter import is_lazy

from .fans import Fans
from .layers import claims_child, compute_fans
from .policy import ParamInfo, Policy, PolicyError
from .policy.expressions import SchemeTemplate
from .policy.patterns import compile_pattern, pattern_matches
from .policy.quantities import model_quantities
from .report import InitReport, ParamRow
from .schemes import Scheme
from .specs import load_policy

PolicyLike = Policy | str | dict[str, Any]


class UnmatchedParametersError(ValueError):
    """``strict=True`` (or ``unmatched="error"``) and some parameters matched no rule (or,
    for a packed parameter, only some of its blocks did).

    Args:
        names: the qualified names of the unmatched parameters (kept as ``.names``).
        policy_name: the policy's name, for the message.
        partial: for a packed parameter, the names of its blocks that have no rule.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> weights = initlab.Policy([initlab.Rule("kaiming_normal", param="weight")], name="w")
        >>> try:
        ...     initlab.plan(nn.Sequential(nn.Linear(2, 2)), weights, strict=True)
        ... except initlab.UnmatchedParametersError as e:
        ...     print(type(e).__name__, e.names)
        UnmatchedParametersError ['0.bias']
    """

    def __init__(
        self, names: list[str], policy_name: str | None, partial: dict[str, list[str]] | None = None
    ) -> None:
        self.names = names
        partial = partial or {}
        shown = ", ".join(
            f"{n} (blocks {', '.join(partial[n])} have no rule)" if n in partial else n
            for n in names
        )
        super().__init__(
            f"{len(names)} parameter(s) matched no rule of policy {policy_name or '(unnamed)'} "
            f"and nothing was written: {shown}. Add rules for them, set "
            "unmatched='default' with a default scheme, or exclude them."
        )


class GuessedFansError(PolicyError):
    """``strict=True`` and some parameters belong to layers the registry does not know, so their
    fans would be guessed from the shape; nothing was written.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> class Scale(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.s = nn.Parameter(torch.ones(2, 3))
        >>> try:
        ...     initlab.plan(Scale(), "xavier_uniform", strict=True)
        ... except initlab.GuessedFansError as e:
        ...     print(str(e)[:52])
        strict: 1 parameter(s) belong to layers the layer re
    """


def guessed_fans_message(rows: list[ParamRow]) -> str:
    """What is guessed and the ``initlab.register_layer`` call that fixes it (class filled in).

    Args:
        rows: the plan's rows whose fans were guessed (``row.guessed``), at least one.

    Returns:
        One line: the parameters with their layer class and guessed fans, then the call.

    Example:
        >>> from torch import nn
        >>> import initlab
        >>> class Dense(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.kernel = nn.Parameter(torch.empty(3, 5))
        >>> import torch
        >>> with warnings.catch_warnings(record=True):
        ...     rows = initlab.plan(Dense(), "xavier_uniform").rows
        >>> msg = guessed_fans_message(rows)
        >>> msg.split(":")[2].split(".")[0]
        ' kernel (Dense, 5/3)'
        >>> msg[msg.index("initlab.register_layer"):][:40]
        "initlab.register_layer('initlab.plan.Den"
    """
    shown = ", ".join(
        f"{r.qualname} ({r.module_type.rpartition('.')[2]}, {r.fans.fan_in}/{r.fans.fan_out})"
        for r in rows
        if r.fans is not None
    )
    first = rows[0]
    cls = first.module_type.rpartition(".")[2]
    call = (
        f"initlab.register_layer({first.module_type!r}, initlab.LayerSpec({cls.lower()!r}, "
        f"{{{first.param_name!r}: initlab.ParamSpec('weight', initlab.Layout(in_axes=(1,), "
        "out_axes=(0,)))}))"
    )
    return (
        f"{len(rows)} parameter(s) belong to layers the layer registry does not know, so their "
        f"fans are guessed from the shape (torch's rule: dim 1 in, dim 0 out): {shown}. Tell "
        f"initlab the layout, e.g. {call}"
    )


def _module_type_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def plan(
    model: nn.Module,
    policy: PolicyLike,
    seed: int | None = 0,
    *,
    strict: bool = False,
    exclude: Iterable[str] = (),
    prefix: str = "",
) -> InitReport:
    """A dry run: the report ``initialize`` would fill, without touching any tensor.

    Args:
        model: any ``nn.Module`` (a model on the meta device works).
        policy: a :class:`~initlab.policy.Policy`, a preset name, a policy file path or a dict.
            Scheme parameters written as expressions (``std: "0.02 / sqrt(2 * n_layer)"``) are
            evaluated with :func:`~initlab.policy.quantities.model_quantities` of ``model``;
            the rows keep their text (``row.expressions``).
        seed: the seed whose per-parameter streams ``initialize`` would use (recorded).
        strict: raise :class:`UnmatchedParametersError` listing every unmatched parameter, and
            :class:`GuessedFansError` for parameters of layers the registry does not know
            (without it they are planned with torch's shape rule, marked "guessed" in the
            report, with one warning listing them).
        exclude: extra qualified-parameter-name patterns to skip (e.g. loaded from a checkpoint).
        prefix: the qualified name of ``model`` inside a larger model, so that initialising a
            submodule gives the same values as initialising the whole model.

    Returns:
        The :class:`~initlab.report.InitReport`: one row per parameter with its status, scheme,
        fans and target std (``achieved_std`` stays None: nothing was drawn).

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> report = initlab.plan(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), "kaiming")
        >>> [(r.qualname, r.status, type(r.scheme).__name__) for r in report.rows]
        [('0.weight', 'planned', 'KaimingNormal'), ('0.bias', 'planned', 'Zeros')]
        >>> round(report.rows[0].target_std, 4)  # sqrt(2 / fan_in), fan_in = 4
        0.7071
    """
    pol = load_policy(policy, model=model)
    # expressions in scheme parameters (std: "0.02 / sqrt(2 * n_layer)") read this model
    bound = pol.bind(model_quantities(model)) if pol.has_expressions else {}
    exclude = tuple(exclude)
    for p in exclude:
        compile_pattern(p)  # a bad pattern fails here, before anything else
    owners: dict[int, tuple[str, str, nn.Module]] = {}
    aliases: dict[int, list[str]] = {}
    order: list[int] = []
    for mod_name, module in model.named_modules(remove_duplicate=False):
        # remove_duplicate=False: one Parameter under two attributes of a module is an alias
        for pname, param in module.named_parameters(recurse=False, remove_duplicate=False):
            full = _join(_join(prefix, mod_name), pname)
            key = id(param)
            if key in owners:
                if full not in aliases[key] and full != _join(owners[key][0], owners[key][1]):
                    aliases[key].append(full)
                continue
            owners[key] = (_join(prefix, mod_name), pname, module)
            aliases[key] = []
            order.append(key)

    params = {id(p): p for p in model.parameters(recurse=True)}
    lazy = [_join(owners[k][0], owners[k][1]) for k in order if is_lazy(params[k])]
    if lazy:
        raise PolicyError(
            f"parameter(s) {', '.join(lazy)} of a lazy module are not materialised yet: run one "
            "forward pass (e.g. on a dummy batch) before planning or initialising"
        )
    by_module = {id(m): n for n, m in model.named_modules()}
    modules = dict(model.named_modules())
    rows: list[ParamRow] = []
    for key in order:
        mod_name, pname, module = owners[key]
        fans_from = _fans_owner(modules, by_module.get(id(module)), module, pname)
        row = _plan_one(
            pol, mod_name, pname, module, params[key], aliases[key], seed, exclude, fans_from, bound
        )
        rows.append(row)

    report = InitReport(rows=rows, seed=seed, policy=pol)
    skipped = [r for r in rows if r.rule_id is not None and r.rule_id.endswith("(no default)")]
    if skipped:
        report.notes.append(_skip_note(skipped))
        warnings.warn(report.notes[-1], UserWarning, stacklevel=2)
    unmatched = report.unmatched
    if unmatched and (strict or pol.unmatched == "error"):
        partial = {r.qualname: uncovered_blocks(r) for r in rows if r.status == "partial"}
        raise UnmatchedParametersError(unmatched, pol.name, partial)
    guessed = [r for r in rows if r.guessed and r.status in ("planned", "partial")]
    if guessed:
        message = guessed_fans_message(guessed)
        if strict:
            raise GuessedFansError(f"strict: {message}")
        warnings.warn(message, UserWarning, stacklevel=2)
    return report


def _plan_one(
    pol: Policy,
    mod_name: str,
    pname: str,
    module: nn.Module,
    param: nn.Parameter,
    aliases: list[str],
    seed: int | None,
    exclude: tuple[str, ...],
    fans_from: tuple[nn.Module, str] | None = None,
    bound: dict[SchemeTemplate, Scheme] | None = None,
) -> ParamRow:
    qualname = _join(mod_name, pname)
    shape = tuple(param.shape)
    fans, fans_error = _fans(*(fans_from or (module, pname)))
    row = ParamRow(
        qualname=qualname,
        module_name=mod_name,
        param_name=pname,
        module_type=_module_type_name(module),
        shape=shape,
        dtype=str(param.dtype).removeprefix("torch."),
        device=str(param.device),
        fans=fans,
        aliases=tuple(aliases),
        seed=seed,
    )
    names = (qualname, *aliases)  # a tied parameter is excluded by any of its names
    if any(pol.is_excluded(n) or any(pattern_matches(p, n) for p in exclude) for n in names):
        return dataclasses.replace(row, status="excluded")
    info = ParamInfo(
        qualname=qualname,
        module_name=mod_name,
        param_name=pname,
        module_type=type(module),
        shape=shape,
        block_names=tuple(b.name for b in fans.blocks) if fans else (),
        role=fans.role if fans is not None and fans.rule != "shape-fallback" else None,
    )
    res = pol.resolve(info)
    written: Scheme | SchemeTemplate | None
    if res.rule is not None:
        written, rule_id = res.rule.scheme, res.rule.id or f"rule[{res.rule_index}]"
    elif pol.unmatched == "default" and pol.default is not None:
        written, rule_id = pol.default, "default"
    else:
        written, rule_id = None, None
    given = [(rule_id, written)] + [
        (rule.id or f"rule[{idx}]", rule.scheme) for _, idx, rule in res.block_rules
    ]
    expressions = tuple(
        (rid, key, str(e))
        for rid, s in given
        if isinstance(s, SchemeTemplate)
        for key, e in s.expressions.items()
    )
    scheme = _concrete(written, bound)
    overrides = tuple(
        (block, rule.id or f"rule[{idx}]", _concrete(rule.scheme, bound))
        for block, idx, rule in res.block_rules
    )
    if scheme is None and not overrides:
        return dataclasses.replace(row, status="unmatched")
    if scheme is not None and scheme.name == "torch_default" and not _has_torch_default(fans):
        # a layer with no known default: a listed skip (plan's notes), not an error
        return dataclasses.replace(row, status="unmatched", rule_id=f"{rule_id} (no default)")
    status = "planned"
    if scheme is None:  # only block rules apply
        rule_id = None
        if not res.covers(info.block_names):
            # some blocks have no rule: "partial" counts as unmatched (strict, "error",
            # materialize, checkpoints); initialize fills only the covered blocks
            status = "partial"
    row = dataclasses.replace(
        row,
        status=status,
        rule_id=rule_id,
        scheme=scheme,
        block_overrides=overrides,
        expressions=expressions,
    )
    return _validated(row, fans_error)


def _concrete(
    scheme: Scheme | SchemeTemplate | None, bound: dict[SchemeTemplate, Scheme] | None
) -> Scheme | None:
    """The scheme itself, or the value of a scheme with expressions for the planned model."""
    if isinstance(scheme, SchemeTemplate):
        return (bound or {})[scheme]
    return scheme


def _has_torch_default(fans: Fans | None) -> bool:
    """Whether the layer registry knows the library default of the parameter (``torch_init``)."""
    return (
        fans is not None and fans.rule != "shape-fallback" and fans.attr("torch_init") is not None
    )


def _skip_note(rows: list[ParamRow]) -> str:
    kinds = sorted({r.module_type.rpartition(".")[2] for r in rows})
    return (
        f"torch_default skipped {len(rows)} parameter(s) whose layer has no default in the layer "
        f"registry ({', '.join(kinds)}), left as they are: {', '.join(r.qualname for r in rows)}. "
        "Give them a rule, or register the layer with its default (ParamSpec(torch_init=...))"
    )


def uncovered_blocks(row: ParamRow) -> list[str]:
    """The blocks of a row that no rule fills (empty when the whole parameter is planned).

    Args:
        row: a row of a plan's report.

    Returns:
        The names of the row's blocks left without a scheme.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> q = initlab.Rule("xavier_uniform", param="in_proj_weight", block="q")
        >>> q_only = initlab.Policy([q])
        >>> row = initlab.plan(nn.MultiheadAttention(4, 2), q_only).rows[0]
        >>> row.qualname, row.status, uncovered_blocks(row)
        ('in_proj_weight', 'partial', ['k', 'v'])
    """
    return [] if row.scheme is not None else list(row.free_blocks)


def _fans_owner(
    modules: dict[str, nn.Module], mod_name: str | None, module: nn.Module, pname: str
) -> tuple[nn.Module, str] | None:
    """Where to compute a parameter's fans when its parent layer changes them (the layer
    registry says which): a MultiheadAttention's ``out_proj.bias``, which ``_reset_parameters``
    zeroes, is reached as ``compute_fans(mha, "out_proj.bias")`` (the Linear alone cannot know
    it)."""
    if not mod_name:
        return None
    parent_name, _, child = mod_name.rpartition(".")
    parent = modules.get(parent_name)
    if claims_child(parent, child):
        return parent, f"{child}.{pname}"
    return None


def _fans(module: nn.Module, pname: str) -> tuple[Fans | None, str | None]:
    try:
        return compute_fans(module, pname), None
    except (ValueError, TypeError) as e:
        return None, str(e)


def _validated(row: ParamRow, fans_error: str | None) -> ParamRow:
    """Check every scheme of the row against the shape and fans (raises, writes nothing)."""
    where = f"parameter {row.qualname!r} (shape {row.shape}, rule {row.rule_id})"
    try:
        if row.scheme is not None:
            fans = row.scheme.validate(row.shape, row.fans)
            # the std of the blocks the row's scheme fills (none: every block is overridden)
            target = row.scheme.target_std(fans) if row.std_blocks != () else None
            row = dataclasses.replace(row, target_std=target)
        for o in row.overrides():
            o.scheme.validate(o.shape, o.fans)
    except (ValueError, TypeError, KeyError) as e:
        extra = f" (layer fans unavailable: {fans_error})" if fans_error else ""
        raise PolicyError(f"{where}: {e}{extra}", path=row.rule_id or "") from None
    return row
