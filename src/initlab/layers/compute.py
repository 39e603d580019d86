"""Layer-aware fans: :func:`compute_fans` asks the layer registry what a parameter connects.

It reads a parameter's **logical** shape (for a ``DTensor`` its global shape; meta tensors work,
only shapes are read), finds the owning layer's :class:`~initlab.layers.spec.LayerSpec` (through
the MRO, see :mod:`initlab.layers.registry`) and returns a :class:`~initlab.fans.Fans` with the
fans, blocks, role, hyper-parameters and torch default the spec gives. The rules for torch's own
layers, with their definitions, are in :mod:`initlab.layers.torch_nn`.

* A **bias** gets its weight's fans and blocks (``ParamSpec.fans_of``).
* Unknown layers or parameters: explicit ``in_axis``/``out_axis``/``batch_axis``, else torch's
  shape rule with ``rule="shape-fallback"`` (a 1-D bias then takes its module's ``weight``).
* A layer can change a child's default (MultiheadAttention zeroes ``out_proj.bias``): reached
  from the parent (``compute_fans(mha, "out_proj.bias")``) the fans record it in
  ``attrs["torch_init"]``.
* A layer can describe a child's parameter: a spec pattern naming ``child.param`` (timm's
  ``Attention`` registers ``qkv.weight`` with blocks q, k, v) gives the fans of that parameter,
  reached from the parent or from the child's own path in a model.

``torch_fan_in``/``torch_fan_out`` always hold torch's shape rule applied to the layer's weight
(for a bias: its weight; for MHA's ``bias_k``/``bias_v`` and separate projections: the tensor
itself), which is what the layer's ``reset_parameters`` uses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from ..fans import Block, Fans, fans_from_axes, fans_from_shape, torch_fans
from .registry import child_torch_init, find_layer
from .spec import ParamSpec

__all__ = ["compute_fans", "explain_fans", "layer_fans"]

CONVENTIONS = ("layer", "torch")


def compute_fans(
    module: nn.Module,
    param_name: str,
    convention: str = "layer",
    *,
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
) -> Fans:
    """Fans of ``module``'s parameter ``param_name`` (see the module docstring for definitions).

    Args:
        module: the layer owning the parameter, or any ancestor when ``param_name`` is a dotted
            path relative to it (``"out_proj.weight"``, ``"encoder.0.weight"``).
        param_name: the parameter's name (``"weight"``, ``"in_proj_weight"``,
            ``"weight_hh_l1_reverse"``) or dotted path.
        convention: ``"layer"`` (default): true fans of what the layer connects, with blocks for
            packed parameters. ``"torch"``: exactly ``torch.nn.init._calculate_fan_in_and_fan_out``
            of the parameter (shape only, no blocks; ValueError below 2 dimensions).
        in_axis, out_axis, batch_axis: explicit axes (JAX ``variance_scaling`` semantics, see
            :func:`~initlab.fans.fans_from_axes`); they override the layer rule. A missing
            ``in_axis``/``out_axis`` defaults to -2/-1.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``.
        ValueError: unknown parameter (the message lists the valid names), uninitialised lazy
            parameter, 1-D parameter under the torch convention or of an unknown layer.

    Example:
        >>> from torch import nn
        >>> f = compute_fans(nn.ConvTranspose2d(16, 32, 3, groups=4), "weight")
        >>> f.fan_in, f.fan_out, (f.torch_fan_in, f.torch_fan_out)  # torch: blind to groups
        (36, 72, (72, 144))
        >>> [b.name for b in compute_fans(nn.LSTM(10, 20), "weight_hh_l0").blocks]
        ['i', 'f', 'g', 'o']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"compute_fans needs an nn.Module, got {type(module).__name__}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown fan convention {convention!r}; use 'layer' or 'torch'")
    owner, name, parent, child = _resolve(module, param_name)
    tensor = _get_tensor(owner, name, module, param_name)
    shape = tuple(int(s) for s in tensor.shape)  # DTensor: the global (logical) shape
    layer = type(owner).__name__
    axes_given = in_axis is not None or out_axis is not None or _nonempty(batch_axis)
    if convention == "torch":
        if axes_given:
            raise ValueError("in_axis/out_axis/batch_axis apply to convention='layer' only")
        if len(shape) < 2:
            raise ValueError(
                f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions: "
                f"{layer}.{name} has shape {shape} (torch's shape rule); use convention='layer' "
                f"or pass explicit fans"
            )
        return dataclasses.replace(fans_from_shape(shape), layer=layer, param=name)
    if axes_given:
        f = fans_from_axes(
            shape,
            -2 if in_axis is None else in_axis,
            -1 if out_axis is None else out_axis,
            batch_axis if batch_axis is not None else (),
        )
        tf = torch_fans(shape) if len(shape) >= 2 else (None, None)
        return dataclasses.replace(
            f, layer=layer, param=name, torch_fan_in=tf[0], torch_fan_out=tf[1]
        )
    fans = None
    if parent is not None:  # a layer may describe a child's parameter (timm's fused qkv Linear)
        fans = layer_fans(parent, f"{child}.{name}", shape)
    if fans is None:
        fans = layer_fans(owner, name, shape)
    if fans is None:
        fans = dataclasses.replace(
            _fallback(owner, name, shape, param_name), layer=layer, param=name
        )
    imposed = child_torch_init(parent, child, name) if parent is not None else None
    if imposed is not None:  # the parent re-initialises it after the child's own init
        attrs = {**dict(fans.attrs), "torch_init": str(imposed)}
        fans = dataclasses.replace(fans, attrs=tuple(sorted(attrs.items())))
    return fans


def explain_fans(fans: Fans) -> str:
    """A one- or two-line human-readable description of ``fans``.

    Args:
        fans: what :func:`compute_fans` (or a ``fans_from_*`` rule) returned.

    Returns:
        ``Layer.param: fan_in=.., fan_out=.. (rule ..)``, with torch's shape-rule fans when they
        differ, and a second line listing the packed blocks when there are any.

    Example:
        >>> from torch import nn
        >>> print(explain_fans(compute_fans(nn.Conv2d(32, 32, 3, groups=32), "weight")))
        Conv2d.weight: fan_in=9, fan_out=9 (rule conv; torch's shape rule: 9/288)
    """
    where = f"{fans.layer or '?'}.{fans.param or '?'}"
    line = f"{where}: fan_in={fans.fan_in}, fan_out={fans.fan_out} (rule {fans.rule}"
    if fans.torch_fan_in is not None and (fans.torch_fan_in, fans.torch_fan_out) != (
        fans.fan_in,
        fans.fan_out,
    ):
        line += f"; torch's shape rule: {fans.torch_fan_in}/{fans.torch_fan_out}"
    line += ")"
    if fans.blocks:
        names = ", ".join(f"{b.name}[{b.start}:{b.stop}]" for b in fans.blocks)
        line += f"\n  {len(fans.blocks)} packed blocks along dim {fans.blocks[0].dim}: {names}"
    return line


# -- parameter lookup ---------------------------------------------------------------------
def _nonempty(axes: Any) -> bool:
    return axes is not None and not (isinstance(axes, (tuple, list)) and len(axes) == 0)


def _names(module: nn.Module, limit: int = 40) -> str:
    names = [n for n, _ in module.named_parameters()]
    if len(names) > limit:
        names = [*names[:limit], f"... ({len(names) - limit} more)"]
    return ", ".join(names) or "(none)"


def _resolve(module: nn.Module, path: str) -> tuple[nn.Module, str, nn.Module | None, str]:
    """The owner of ``path``, the parameter's name, the owner's parent and the owner's attribute
    name in it (None and "" when ``path`` has no dots)."""
    if not isinstance(path, str) or not path:
        raise TypeError(f"param_name must be a non-empty string, got {path!r}")
    *mods, name = path.split(".")
    owner, parent = module, None
    for i, part in enumerate(mods):
        child = owner._modules.get(part)
        if child is None:
            raise ValueError(
                f"{type(module).__name__} has no submodule {'.'.join(mods[: i + 1])!r} "
                f"(from {path!r}); its parameters are: {_names(module)}"
            )
        owner, parent = child, owner
    return owner, name, parent, mods[-1] if mods else ""


def _get_tensor(owner: nn.Module, name: str, root: nn.Module, path: str) -> Tensor:
    if name in owner._parameters and owner._parameters[name] is None:
        raise ValueError(
            f"{type(owner).__name__}.{name} is None (the layer was built without it, "
            f"e.g. bias=False); its parameters are: {_names(owner)}"
        )
    t = getattr(owner, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(
            f"{type(root).__name__} has no parameter {path!r}; its parameters are: {_names(root)}"
        )
    if is_lazy(t):
        raise ValueError(
            f"{type(owner).__name__}.{name} is an uninitialised lazy parameter (shape unknown); "
            f"run one forward pass (or module.initialize_parameters(input)) before computing fans"
        )
    return t


def _shape(owner: nn.Module, name: str) -> tuple[int, ...]:
    *path, name = name.split(".")  # a child's parameter a layer describes: "qkv.weight"
    for part in path:
        child = owner._modules.get(part)
        if child is None:
            raise ValueError(f"{type(owner).__name__} has no submodule {part!r}")
        owner = child
    t = getattr(owner, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(f"{type(owner).__name__} has no tensor {name!r} to read fans from")
    if is_lazy(t):
        raise ValueError(
            f"{type(owner).__name__}.{name} is an uninitialised lazy parameter; run one "
            f"forward pass before computing fans"
        )
    return tuple(int(s) for s in t.shape)


# -- building Fans from the registry ---------------------------------------------------
def layer_fans(module: nn.Module, name: str, shape: tuple[int, ...]) -> Fans | None:
    """The registered rule for ``module.name`` (of logical ``shape``), or None when the layer
    or the parameter is not registered.

    Args:
        module: the layer that owns the parameter.
        name: the parameter's name inside ``module`` (``"weight"``, ``"bias_hh_l0"``...).
        shape: the parameter's logical (unsharded) shape.

    Returns:
        The layer's :class:`~initlab.fans.Fans` for the parameter, or None.

    Example:
        >>> from torch import nn
        >>> f = layer_fans(nn.GRU(4, 6), "bias_hh_l0", (18,))  # a bias takes its weight's fans
        >>> f.fan_in, f.fan_out, [b.name for b in f.blocks], f.role
        (6, 6, ['r', 'z', 'n'], 'bias')
    """
    spec = find_layer(module)
    found = spec.param(name) if spec is not None else None
    if spec is None or found is None:
        return None
    pspec, match = found
    attrs = spec.attrs(module, name) if spec.attrs is not None else {}
    if pspec.fans_of is not None:
        source = _expand(match, pspec.fans_of)
        fans = layer_fans(module, source, _shape(module, source))
        if fans is None:
            raise ValueError(
                f"{type(module).__name__}.{name} takes its fans from {source!r}, which the "
                f"layer spec {spec.rule!r} does not describe"
            )
        attrs = {**dict(fans.attrs), **attrs}
        attrs.pop("torch_init", None)
        attrs.pop("padding_idx", None)
    elif pspec.fans is not None:
        fans = pspec.fans(module, name, shape)
        attrs = {**attrs, **dict(fans.attrs)}
    else:
        fans = _layout_fans(module, name, shape, pspec)
    if pspec.padding_attr is not None:
        attrs["padding_idx"] = getattr(module, pspec.padding_attr)
    if pspec.torch_init is not None:
        attrs["torch_init"] = str(pspec.torch_init)
    return Fans(
        fans.fan_in,
        fans.fan_out,
        fans.blocks,
        rule=spec.rule,
        layer=type(module).__name__,
        param=name,
        torch_fan_in=fans.torch_fan_in,
        torch_fan_out=fans.torch_fan_out,
        attrs=tuple(sorted(attrs.items())),
        role=pspec.role,
    )


_EXPANDED: dict[tuple[str, str, str], str] = {}


def _expand(match: re.Match[str], template: str) -> str:
    """``match.expand(template)``, cached (parsing the template dominates the cost)."""
    key = (match.re.pattern, match.string, template)
    out = _EXPANDED.get(key)
    if out is None:
        if len(_EXPANDED) > 4096:
            _EXPANDED.clear()
        out = _EXPANDED[key] = match.expand(template)
    return out


def _layout_fans(module: nn.Module, name: str, shape: tuple[int, ...], pspec: ParamSpec) -> Fans:
    layout = pspec.layout
    assert layout is not None  # a ParamSpec has exactly one source of fans
    names = pspec.block_names(module)
    block_shape = shape
    blocks: tuple[Block, ...] = ()
    if names:
        dim = pspec.block_dim
        if not -len(shape) <= dim < len(shape) or shape[dim] % len(names):
            raise ValueError(
                f"{type(module).__name__}.{name} (shape {shape}) does not split into the "
                f"{len(names)} blocks {names} along dimension {dim}"
            )
        size = shape[dim] // len(names)
        block_shape = tuple(size if i == dim % len(shape) else s for i, s in enumerate(shape))
        blocks = tuple(Block(n, i * size, (i + 1) * size, dim) for i, n in enumerate(names))
    groups = int(getattr(module, layout.groups_attr, 1)) if layout.group_axis is not None else 1
    fan_in, fan_out = layout.fans(block_shape, groups)
    tfi, tfo = (None, None) if layout.elementwise or len(shape) < 2 else torch_fans(shape)
    return Fans(int(fan_in), int(fan_out), blocks, torch_fan_in=tfi, torch_fan_out=tfo)


def _fallback(owner: nn.Module, name: str, shape: tuple[int, ...], path: str) -> Fans:
    """Unknown layer or parameter: torch's shape rule, recorded as ``rule="shape-fallback"``."""
    if len(shape) < 2 and name.startswith("bias"):
        w = getattr(owner, "weight", None)
        if isinstance(w, Tensor) and not is_lazy(w) and w.dim() >= 2:
            return fans_from_shape(tuple(w.shape), rule="shape-fallback")
    if len(shape) < 2:
        raise ValueError(
            f"cannot tell the fans of {type(owner).__name__}.{name} (shape {shape}): the layer "
            f"is not recognised and a tensor with fewer than 2 dimensions has no shape rule; "
            f"pass explicit fans (initlab.Fans(fan_in, fan_out)) or in_axis/out_axis for "
            f"{path!r}, or use a scheme that needs no fans"
        )
    return fans_from_shape(shape, rule="shape-fallback")
