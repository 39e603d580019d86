"""Which parameters scale with width: each parameter's shape and fans against the base model's.

A dimension is *infinite* when it differs from the same-named base parameter's (Tensor Programs
V, Yang et al. 2022, https://arxiv.org/abs/2203.03466, Section 5 and Table 3). From the fans
(the layer registry's, so a GPT-2 ``Conv1D`` stored (in, out) reads right) and the shape:

==========  ==================================  =======================================
kind        which                               width_mult
==========  ==================================  =======================================
hidden      fan_in and fan_out infinite         fan_in / base fan_in
input       fan_in finite, fan_out infinite     fan_out / base fan_out
output      fan_in infinite, fan_out finite     fan_in / base fan_in
vector      1-D (biases, norms) or no infinite  size / base size (1 when finite)
            dim at all
==========  ==================================  =======================================

A parameter of a layer the layer registry does not know (a bare ``nn.Parameter`` position table)
has guessed fans; it is never a readout (with one infinite dim it is input-like, as mup treats
any parameter with one infinite dim).

``width_mult`` follows the mup package's ``InfShape.width_mult`` (its last infinite dim, which
for a torch (out, in) weight is fan_in when infinite, else fan_out). Input-like and vector-like
parameters are alike for muP; they keep separate names so the table reads as the paper's.

Nothing is read from tensor attributes, only names and global shapes (``DTensor.shape`` is the
global shape), so the classification survives FSDP2 sharding, ``torch.compile`` (its
``_orig_mod.`` prefix is dropped from names) and state_dict round trips.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping

from torch import nn

from ..fans import Fans
from ..layers import claims_child, compute_fans

__all__ = [
    "KINDS",
    "WRAPPERS",
    "Classified",
    "MupError",
    "base_name",
    "canonical",
    "classify",
    "occurrences",
]

#: the kinds of parameter, in the order of Tensor Programs V's Table 3
KINDS: tuple[str, ...] = ("input", "hidden", "output", "vector")

#: name segments that wrappers insert (torch.compile, FSDP1, activation checkpointing)
WRAPPERS: tuple[str, ...] = ("_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")


class MupError(ValueError):
    """A model, base or argument that muP cannot work with; the message says why and the fix.

    Example:
        >>> from torch import nn
        >>> try:
        ...     classify(nn.Linear(4, 4), nn.Linear(4, 2, bias=False))
        ... except MupError as e:
        ...     print(str(e)[:48])
        the base model lacks parameter(s) bias: build th
    """


def canonical(name: str) -> str:
    """A parameter or module name without wrapper segments (``_orig_mod`` of torch.compile...).

    Args:
        name: a qualified name.

    Returns:
        The name as the unwrapped model spells it.

    Example:
        >>> canonical("_orig_mod.blocks.0._checkpoint_wrapped_module.fc.weight")
        'blocks.0.fc.weight'
    """
    return ".".join(p for p in name.split(".") if p not in WRAPPERS)


@dataclasses.dataclass(frozen=True)
class Classified:
    """One parameter's width structure against the base.

    Attributes:
        name: the canonical qualified name (the first one, for tied parameters).
        base_name: the base's parameter it is compared with (the same name, or block 0's in a
            base with fewer blocks).
        module: the canonical name of the module that owns it.
        kind: one of :data:`KINDS`.
        shape, base_shape: the global shapes.
        fan_in_mult, fan_out_mult: target / base fans (1.0 when finite).
        width_mult: see the module doc.
        infinite_dims: the dims whose size differs from the base's.
        readouts: modules (canonical names) where this parameter acts as a readout
            (output-like there): its own module for an output weight, the head of a tied
            embedding.
        aliases: its other canonical names (tied parameters).
        guessed: a parameter of 2+ dims of a layer the registry does not know: its fans are
            torch's shape rule (dim 1 in, dim 0 out), and it is never taken for a readout.

    Example:
        >>> from torch import nn
        >>> c = classify(nn.Linear(256, 256), nn.Linear(64, 64))["weight"]
        >>> c.kind, c.width_mult, c.infinite_dims
        ('hidden', 4.0, (0, 1))
    """

    name: str
    base_name: str
    module: str
    kind: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    fan_in_mult: float
    fan_out_mult: float
    width_mult: float
    infinite_dims: tuple[int, ...]
    readouts: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    guessed: bool = False


def occurrences(model: nn.Module) -> Iterator[tuple[str, str, nn.Module, nn.Parameter]]:
    """Every (module name, parameter name, module, parameter), tied parameters at each owner.

    Args:
        model: any module.

    Returns:
        An iterator in ``named_modules`` order; names are the model's own (not canonical).

    Example:
        >>> from torch import nn
        >>> emb, head = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
        >>> head.weight = emb.weight
        >>> [(m, p) for m, p, _, _ in occurrences(nn.ModuleDict({"emb": emb, "head": head}))]
        [('emb', 'weight'), ('head', 'weight')]
    """
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for pname, param in module.named_parameters(recurse=False, remove_duplicate=False):
            yield mod_name, pname, module, param


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b


def _fans(modules: dict[str, nn.Module], mod_name: str, module: nn.Module, pname: str) -> Fans:
    """The layer registry's fans (through the parent layer when it claims the child, as plan)."""
    parent_name, _, child = mod_name.rpartition(".")
    parent = modules.get(parent_name) if mod_name else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if claims_child(parent, child):
                return compute_fans(parent, f"{child}.{pname}")  # type: ignore[arg-type]
            return compute_fans(module, pname)
        except (ValueError, TypeError):
            shape = tuple(getattr(module, pname).shape)
            return _shape_fans(shape)


def _shape_fans(shape: tuple[int, ...]) -> Fans:
    if len(shape) < 2:
        return Fans(1, 1, rule="shape-fallback")
    rest = 1
    for s in shape[2:]:
        rest *= s
    return Fans(shape[1] * rest, shape[0] * rest, rule="shape-fallback")


def _kind(ndim: int, inf_in: bool, inf_out: bool) -> str:
    if ndim < 2:
        return "vector"
    if inf_in and inf_out:
        return "hidden"
    if inf_out:
        return "input"
    if inf_in:
        return "output"
    return "vector"


def _entries(model: nn.Module) -> dict[str, tuple[str, str, tuple[int, ...], Fans, int]]:
    """canonical qualified name -> (canonical module, param name, shape, fans, param id)."""
    modules = dict(model.named_modules())
    out = {}
    for mod_name, pname, module, param in occurrences(model):
        name = canonical(_join(mod_name, pname))
        if name in out:
            continue
        fans = _fans(modules, mod_name, module, pname)
        out[name] = (canonical(mod_name), pname, tuple(param.shape), fans, id(param))
    return out


def base_name(name: str, known: Mapping[str, object], module: bool = False) -> str | None:
    """The base's name for a model's parameter or module name: itself, or, for a block the
    shallower base lacks, the same name in block 0 (``h.7.mlp.c_fc`` -> ``h.0.mlp.c_fc``).
    Only an index with a submodule after it is a block (``3.weight`` of a Sequential is not).

    Args:
        name: a canonical name of the model.
        known: the base's canonical names (a dict or set).
        module: ``name`` is a module's (else a parameter's, whose last part is no module).

    Returns:
        The base's name, or None when it has none.

    Example:
        >>> base_name("h.7.mlp.weight", {"h.0.mlp.weight": 0, "h.1.mlp.weight": 0})
        'h.0.mlp.weight'
    """
    if name in known:
        return name
    segs = name.split(".")
    inner = 1 if module else 2  # a submodule after the index (and the parameter's own name)
    for i, seg in enumerate(segs):
        if seg.isdigit() and seg != "0" and len(segs) - i - 1 >= inner:
            candidate = ".".join([*segs[:i], "0", *segs[i + 1 :]])
            if candidate in known:
                return candidate
    return None


def _check_names(target: dict, ref: dict, what: str) -> dict[str, str]:
    mapped = {n: base_name(n, ref) for n in target}
    missing = [n for n, b in mapped.items() if b is None]
    if missing:
        raise MupError(
            f"the {what} model lacks parameter(s) {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}: build the {what} with the same class and "
            "depth as the model, changing only the widths"
        )
    hit = set(mapped.values())
    extra = [n for n in ref if n not in hit]
    if extra:
        raise MupError(
            f"the {what} model has parameter(s) the model lacks: {', '.join(extra[:5])}; build "
            f"the {what} with the same class and depth as the model, changing only the widths"
        )
    return mapped  # type: ignore[return-value]


def _infinite(shape: tuple[int, ...], fans: Fans, ref_shape: tuple[int, ...], ref: Fans):
    """(fan_in infinite, fan_out infinite) from a comparison of two widths."""
    if len(shape) < 2:
        return False, bool(shape) and shape[0] != ref_shape[0]
    return fans.fan_in != ref.fan_in, fans.fan_out != ref.fan_out


def classify(
    model: nn.Module, base: nn.Module, delta: nn.Module | None = None
) -> dict[str, Classified]:
    """Classify every parameter of ``model`` against the same-named parameter of ``base``.

    Which dims are infinite is read from ``model`` against ``base``, or, when ``delta`` (a third
    model of another width, as the mup package's ``set_base_shapes(delta=...)``) is given, from
    ``delta`` against ``base``: then a model at the base's own width is still labelled right
    (its multipliers are all 1 either way).

    Args:
        model: the model (any device, meta included; sharded, compiled or wrapped).
        base: the base model (built on meta is fine) with the same parameter names.
        delta: optionally, the model at another width, to tell which dims scale.

    Returns:
        canonical name -> :class:`Classified`, one entry per parameter (tied parameters once,
        under their first name), in the model's order.

    Raises:
        MupError: names that differ between the models, or ranks that differ.

    Example:
        >>> from torch import nn
        >>> net = lambda w: nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, w),
        ...                               nn.ReLU(), nn.Linear(w, 10))
        >>> table = classify(net(256), net(64))
        >>> [(n, c.kind, c.width_mult) for n, c in table.items() if n.endswith("weight")]
        [('0.weight', 'input', 4.0), ('2.weight', 'hidden', 4.0), ('4.weight', 'output', 4.0)]
        >>> [c.kind for c in classify(net(64), net(64), delta=net(32)).values()][::2]
        ['input', 'hidden', 'output']
    """
    target, ref = _entries(model), _entries(base)
    mapped = _check_names(target, ref, "base")
    dref = _entries(delta) if delta is not None else None
    dmapped = _check_names(target, dref, "delta") if dref is not None else None
    # readout occurrences: each (module, param) place a parameter is used, tied ones included
    places: dict[int, list[tuple[str, str, nn.Module]]] = {}
    modules = dict(model.named_modules())
    for mod_name, pname, module, param in occurrences(model):
        places.setdefault(id(param), []).append((mod_name, pname, module))
    base_modules = {canonical(n): m for n, m in base.named_modules()}
    delta_modules = {canonical(n): m for n, m in delta.named_modules()} if delta else {}
    out: dict[str, Classified] = {}
    seen: dict[int, str] = {}
    for name, (mod, _, shape, fans, key) in target.items():
        if key in seen:
            continue
        seen[key] = name
        _, _, base_shape, base_fans, _ = ref[mapped[name]]
        if len(base_shape) != len(shape):
            raise MupError(
                f"parameter {name} has shape {shape} but the base's has {base_shape}: the "
                "ranks must agree (build the base with the same class, only narrower)"
            )
        other, other_fans = shape, fans  # what tells the infinite dims: model or delta
        if dref is not None and dmapped is not None:
            _, _, other, other_fans, _ = dref[dmapped[name]]
            if len(other) != len(shape):
                raise MupError(f"parameter {name}: the delta's rank differs ({other})")
        inf_in, inf_out = _infinite(other, other_fans, base_shape, base_fans)
        dims = tuple(i for i, (a, b) in enumerate(zip(other, base_shape, strict=True)) if a != b)
        if len(shape) < 2:
            fin, fout = 1.0, (shape[0] / base_shape[0] if shape else 1.0)
        else:
            fin = fans.fan_in / base_fans.fan_in
            fout = fans.fan_out / base_fans.fan_out
        kind = _kind(len(shape), inf_in, inf_out)
        # mup's InfShape.width_mult: the last infinite dim (fan_in for a torch (out, in) weight)
        wm = fin if inf_in else fout if inf_out else 1.0
        readouts = []
        aliases = []
        for mod_name, p2, module in places[key]:
            full = canonical(_join(mod_name, p2))
            if full != name and full not in aliases:
                aliases.append(full)
            f = _fans(modules, mod_name, module, p2)
            if len(shape) < 2 or f.rule == "shape-fallback":
                continue
            other = delta_modules if delta is not None else None
            if _is_readout(canonical(mod_name), p2, f, base_modules, other):
                readouts.append(canonical(mod_name))
        guessed = fans.rule == "shape-fallback" and len(shape) >= 2
        if guessed and kind == "output":
            # an unregistered layer's parameter (a bare position table): its fans are guessed,
            # so it is no readout; one infinite dim is vector-like, as in mup (ninf == 1)
            kind, readouts = "input", []
        if kind == "output" and len(readouts) < len(places[key]):
            # tied: also used where it is not a readout (an embedding); mup's MuSharedReadout
            # treats the weight as input-like and applies 1/width_mult at the readout
            kind = "input"
        out[name] = Classified(
            name=name,
            base_name=mapped[name],
            module=mod,
            kind=kind,
            shape=shape,
            base_shape=base_shape,
            fan_in_mult=fin,
            fan_out_mult=fout,
            width_mult=wm,
            infinite_dims=dims,
            readouts=tuple(readouts),
            aliases=tuple(aliases),
            guessed=guessed,
        )
    return out


def _is_readout(
    mod_name: str,
    pname: str,
    fans: Fans,
    base_modules: dict[str, nn.Module],
    delta_modules: dict[str, nn.Module] | None,
) -> bool:
    """Whether the parameter, used in this module, has an infinite fan_in and a finite fan_out."""
    bname = base_name(mod_name, base_modules, module=True)
    bmod = base_modules.get(bname) if bname is not None else None
    if bmod is None or getattr(bmod, pname, None) is None:
        return False
    bf = _fans(base_modules, bname, bmod, pname)  # type: ignore[arg-type]
    if delta_modules is not None:
        dname = base_name(mod_name, delta_modules, module=True)
        dmod = delta_modules.get(dname) if dname is not None else None
        if dmod is None or getattr(dmod, pname, None) is None:
            return False
        fans = _fans(delta_modules, dname, dmod, pname)  # type: ignore[arg-type]
    return fans.fan_in != bf.fan_in and fans.fan_out == bf.fan_out
