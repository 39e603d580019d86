"""What initlab knows about one layer type: a :class:`LayerSpec` with a :class:`ParamSpec` per
parameter.

A parameter's spec says, as data wherever possible:

* its **layout** (:class:`Layout`): which axes are inputs and outputs. The fans of a tensor of
  shape ``s`` are ``fan_in = prod(s[in_axes])·r`` and ``fan_out = prod(s[out_axes])·r``, with
  ``r`` the product of every other axis (a kernel's receptive field) and the ``group_axis``
  divided by the layer's ``groups`` (He et al. 2015, https://arxiv.org/abs/1502.01852);
* its **blocks**: equal slices of one dimension filled as separate layers (packed q/k/v, LSTM
  gates i/f/g/o, GRU r/z/n); fans are then those of one block;
* its **role** (:data:`ROLES`), its **padding row** (a module attribute naming a row kept at
  zero) and its **torch default** (:class:`~initlab.layers.defaults.TorchInit`).

A bias names the parameter it shares fans and blocks with (``fans_of``); a parameter whose fans
depend on hyper-parameters in a way no layout states (MultiheadAttention's ``bias_k``) gives a
function instead. The layer spec adds the hyper-parameters recorded in ``Fans.attrs``, the values
of its buffers after materialisation on meta, and the defaults a layer imposes on a child's
parameters (MultiheadAttention zeroes ``out_proj.bias``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from ..fans import Fans
from .defaults import TorchInit

__all__ = ["ELEMENTWISE", "LINEAR", "ROLES", "LayerSpec", "Layout", "ParamSpec"]

#: what a parameter is to its layer
ROLES: tuple[str, ...] = (
    "weight",
    "bias",
    "norm_scale",
    "norm_shift",
    "embedding",
    "activation",
    "layer_scale",
    "position_embedding",
    "class_token",
    "readout",
)

#: a function computing a parameter's fans from its module, name and logical shape
FansFn = Callable[[nn.Module, str, tuple[int, ...]], Fans]
#: a function returning a layer's hyper-parameters for ``Fans.attrs`` (module, parameter name)
AttrsFn = Callable[[nn.Module, str], Mapping[str, Any]]
BufferValue = bool | int | float


def _axes(value: Any, what: str) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, int) else tuple(value)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"Layout {what} must be integers, got {value!r}")
    return axes


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which axes of a weight are inputs and outputs (see the module docstring for the fans).

    Args:
        in_axes, out_axes: the input and output axes; both empty means an element-wise
            parameter (norm scale, PReLU slope) with ``fan_in = fan_out = 1``.
        group_axis: the axis that holds all channels of a grouped layer and is divided by the
            module's ``groups_attr`` (Conv ``[out, in/g, *k]``: 0; ConvTranspose
            ``[in, out/g, *k]``: 0), or None.
        groups_attr: the module attribute holding the number of groups.

    Example:
        >>> Layout(in_axes=(0,), out_axes=(1,), group_axis=0).fans((16, 8, 3, 3), groups=4)
        (36, 72)
    """

    in_axes: tuple[int, ...] = (1,)
    out_axes: tuple[int, ...] = (0,)
    group_axis: int | None = None
    groups_attr: str = "groups"

    def __post_init__(self) -> None:
        ins, outs = _axes(self.in_axes, "in_axes"), _axes(self.out_axes, "out_axes")
        object.__setattr__(self, "in_axes", ins)
        object.__setattr__(self, "out_axes", outs)
        if set(ins) & set(outs) or len(set(ins)) < len(ins) or len(set(outs)) < len(outs):
            raise ValueError(f"Layout in_axes {ins} and out_axes {outs} must be distinct axes")
        if bool(ins) != bool(outs):
            raise ValueError(
                f"Layout needs both in_axes and out_axes (got {ins} and {outs}), or neither for "
                "an element-wise parameter"
            )
        if self.group_axis is not None and self.group_axis not in (*ins, *outs):
            raise ValueError(
                f"Layout group_axis {self.group_axis} must be one of the in/out axes {ins + outs}"
            )

    @property
    def elementwise(self) -> bool:
        return not self.in_axes

    def fans(self, shape: Sequence[int], groups: int = 1) -> tuple[int, int]:
        """``(fan_in, fan_out)`` of a tensor of ``shape`` (one block's shape when packed)."""
        if self.elementwise:
            return 1, 1
        ndim = len(shape)
        for a in (*self.in_axes, *self.out_axes):
            if not -ndim <= a < ndim:
                raise ValueError(f"layout axis {a} is out of range for shape {tuple(shape)}")
        ins = tuple(a % ndim for a in self.in_axes)
        outs = tuple(a % ndim for a in self.out_axes)
        group = -1 if self.group_axis is None else self.group_axis % ndim
        fan_in = fan_out = receptive = 1
        for i, size in enumerate(shape):
            size = int(size)
            if i == group:
                if groups < 1 or size % groups:
                    raise ValueError(
                        f"axis {i} of shape {tuple(shape)} does not split into {groups} groups"
                    )
                size //= groups
            if i in ins:
                fan_in *= size
            elif i in outs:
                fan_out *= size
            else:
                receptive *= size
        fan_in, fan_out = fan_in * receptive, fan_out * receptive
        return fan_in, fan_out


#: torch's ``[out, in, *k]`` weight (Linear, Bilinear ``[out, in1, in2]``, RNN gates)
LINEAR = Layout()
#: an element-wise parameter: fan_in = fan_out = 1
ELEMENTWISE = Layout((), ())


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One parameter of a layer: role, layout, blocks, padding row and torch default.

    Exactly one of ``layout``, ``fans_of`` and ``fans`` says where the fans come from.

    Args:
        role: one of :data:`ROLES`.
        layout: the weight's :class:`Layout`.
        blocks: names of equal blocks along ``block_dim`` (``("q", "k", "v")``), or a function
            of the module returning them (an RNNBase's gates depend on its ``mode``).
        block_dim: the packed dimension.
        fans_of: the parameter whose fans and blocks this one shares (a bias: ``"weight"``); a
            template expanded with the match of the parameter's name pattern
            (``r"weight_\\1"`` for ``bias_(ih|hh)``).
        fans: code computing the fans, when no layout states them.
        padding_attr: the module attribute naming a row of the tensor kept at zero
            (Embedding's ``"padding_idx"``), recorded as ``Fans.attrs["padding_idx"]``.
        torch_init: what torch's ``reset_parameters`` draws for it (``torch_default``).

    Example:
        >>> ParamSpec("weight", LINEAR, blocks=("i", "f", "g", "o")).block_names(None)
        ('i', 'f', 'g', 'o')
    """

    role: str = "weight"
    layout: Layout | None = None
    blocks: tuple[str, ...] | Callable[[nn.Module], tuple[str, ...]] = ()
    block_dim: int = 0
    fans_of: str | None = None
    fans: FansFn | None = None
    padding_attr: str | None = None
    torch_init: TorchInit | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown parameter role {self.role!r}; use one of {', '.join(ROLES)}")
        sources = [self.layout is not None, self.fans_of is not None, self.fans is not None]
        if sum(sources) != 1:
            raise ValueError(
                "ParamSpec needs exactly one of layout=, fans_of= or fans= (where its fans come "
                f"from), got {sum(sources)}"
            )
        if self.layout is not None and not isinstance(self.layout, Layout):
            raise TypeError(f"ParamSpec layout must be a Layout, got {self.layout!r}")
        if self.fans is not None and not callable(self.fans):
            raise TypeError(f"ParamSpec fans must be a function, got {self.fans!r}")
        if not callable(self.blocks):
            names = tuple(self.blocks)
            if not all(isinstance(n, str) and n for n in names) or len(set(names)) < len(names):
                raise ValueError(f"ParamSpec blocks must be distinct names, got {self.blocks!r}")
            object.__setattr__(self, "blocks", names)
        if self.torch_init is not None and not isinstance(self.torch_init, TorchInit):
            raise TypeError(f"ParamSpec torch_init must be a TorchInit, got {self.torch_init!r}")

    def block_names(self, module: nn.Module | None) -> tuple[str, ...]:
        """The block names for ``module`` (empty when the parameter is one block)."""
        return tuple(self.blocks(module)) if callable(self.blocks) else self.blocks  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """All initlab knows about one layer type.

    Args:
        rule: recorded as ``Fans.rule`` (``"linear"``, ``"conv"``...).
        params: parameter name patterns (regular expressions matched in full, tried in order)
            to their :class:`ParamSpec`. A name no pattern matches falls back to torch's shape
            rule (``rule="shape-fallback"``).
        attrs: a function ``(module, param_name) -> dict`` of hyper-parameters recorded in
            ``Fans.attrs``, or None.
        buffers: buffer name -> value after materialisation on meta (BatchNorm's
            ``running_var``: 1).
        children: child attribute -> parameter -> :class:`~initlab.layers.defaults.TorchInit`
            the layer imposes after the child's own init (MultiheadAttention:
            ``{"out_proj": {"bias": TorchInit("zeros")}}``).

    Example:
        >>> spec = LayerSpec("linear", {"weight": ParamSpec("weight", LINEAR)})
        >>> spec.param("weight")[0].role, spec.param("scale") is None
        ('weight', True)
    """

    rule: str
    params: Mapping[str, ParamSpec]
    attrs: AttrsFn | None = None
    buffers: Mapping[str, BufferValue] = dataclasses.field(default_factory=dict)
    children: Mapping[str, Mapping[str, TorchInit]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str) or not self.rule:
            raise ValueError(f"LayerSpec rule must be a non-empty string, got {self.rule!r}")
        if not isinstance(self.params, Mapping):
            raise TypeError(
                f"LayerSpec params must map name patterns to ParamSpec, got {self.params!r}"
            )
        compiled = []
        for pattern, spec in self.params.items():
            if not isinstance(spec, ParamSpec):
                raise TypeError(f"LayerSpec params[{pattern!r}] must be a ParamSpec, got {spec!r}")
            try:
                compiled.append((re.compile(pattern), spec))
            except (re.error, TypeError) as e:
                raise ValueError(f"LayerSpec params: bad name pattern {pattern!r}: {e}") from None
        if self.attrs is not None and not callable(self.attrs):
            raise TypeError(f"LayerSpec attrs must be a function, got {self.attrs!r}")
        for name, value in dict(self.buffers).items():
            if not isinstance(value, (bool, int, float)):
                raise TypeError(f"LayerSpec buffers[{name!r}] must be a number, got {value!r}")
        for child, inits in dict(self.children).items():
            for pname, init in dict(inits).items():
                if not isinstance(init, TorchInit):
                    raise TypeError(
                        f"LayerSpec children[{child!r}][{pname!r}] must be a TorchInit, "
                        f"got {init!r}"
                    )
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "buffers", dict(self.buffers))
        object.__setattr__(self, "children", {c: dict(i) for c, i in dict(self.children).items()})
        object.__setattr__(self, "_compiled", tuple(compiled))

    def param(self, name: str) -> tuple[ParamSpec, re.Match[str]] | None:
        """The spec of parameter ``name`` and the match of its pattern, or None."""
        for pattern, spec in self._compiled:  # type: ignore[attr-defined]
            match = pattern.fullmatch(name)
            if match is not None:
                return spec, match
        return None
