"""Fans: how many inputs feed one output unit, and how many outputs one input feeds.

This module holds the data model (:class:`Fans`, :class:`Block`) and the shape rules. What each
layer connects (``compute_fans``, the layer registry) lives in :mod:`initlab.layers`.

Definitions (LeCun 1998; Glorot & Bengio 2010; He et al. 2015):

* ``fan_in``  = number of inputs summed into one output unit of the layer;
* ``fan_out`` = number of output units one input unit contributes to.

For a packed parameter (several matrices stacked along one dimension, e.g. the q/k/v
projections of ``nn.MultiheadAttention`` or the gates of ``nn.LSTM``), ``fan_in`` and
``fan_out`` describe **one block**, and :attr:`Fans.blocks` lists the blocks so that a
scheme fills each block as if it were its own layer.

Paper: He et al. 2015, "Delving Deep into Rectifiers", https://arxiv.org/abs/1502.01852 (fans of
a convolution); Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html (fan_avg).

Example:
    >>> f = Fans(fan_in=36, fan_out=72)
    >>> f.fan("fan_avg"), f.fan("fan_geo_avg") == (36 * 72) ** 0.5
    (54.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

FanMode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
FAN_MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")


@dataclass(frozen=True)
class Block:
    """One block of a packed parameter: indices ``[start, stop)`` along dimension ``dim``.

    ``fan_in``/``fan_out`` override the parameter's fans for this block when its blocks differ
    (e.g. MultiheadAttention's ``in_proj_bias`` when ``kdim``/``vdim`` differ from ``embed_dim``).

    Attributes:
        name: the block's label (``"q"``, ``"k"``, ``"v"``, an LSTM gate ``"i"``/``"f"``...).
        start, stop: the block's indices ``[start, stop)`` along ``dim``.
        dim: the packed dimension (0 for torch's stacked ``[out, in]`` weights).
        fan_in, fan_out: this block's own fans, or None to use the parameter's.

    Example:
        >>> Block("f", 20, 40).size  # an LSTM's forget gate, hidden_size 20
        20
    """

    name: str
    start: int
    stop: int
    dim: int = 0
    fan_in: int | None = None
    fan_out: int | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Fans:
    """Fans of one parameter (per block, when the parameter is packed).

    Attributes:
        fan_in: inputs summed into one output unit (of one block).
        fan_out: outputs fed by one input unit (of one block).
        blocks: the blocks of a packed parameter; empty when the parameter is one block.
        rule: which rule produced the numbers, e.g. ``"Conv2d"``, ``"torch-shape"``,
            ``"axes"``, or ``"shape-fallback"`` when the layer was not recognised.
        layer: class name of the owning module, when known.
        param: the parameter's name inside its module (``"weight"``, ``"weight_hh_l0"``...).
        torch_fan_in, torch_fan_out: what ``torch.nn.init._calculate_fan_in_and_fan_out``
            returns for the layer's weight (used by the ``torch_default`` scheme).
        attrs: layer hyper-parameters a scheme may need (``hidden_size``, ``padding_idx``,
            ``groups``, ``torch_init``...), as a sorted tuple of ``(key, value)`` pairs so the
            object stays hashable.
        role: what the parameter is to its layer (``"weight"``, ``"bias"``, ``"norm_scale"``,
            ...; see :data:`initlab.layers.ROLES`), or None when the layer is not known.

    Example:
        >>> qkv = (Block("q", 0, 4), Block("k", 4, 8), Block("v", 8, 12))
        >>> f = Fans(fan_in=4, fan_out=12, blocks=qkv)
        >>> f.fan("fan_avg"), f.block_shapes((12, 4))
        (8.0, [(4, 4), (4, 4), (4, 4)])
    """

    fan_in: int
    fan_out: int
    blocks: tuple[Block, ...] = ()
    rule: str = "torch-shape"
    layer: str | None = None
    param: str | None = None
    torch_fan_in: int | None = None
    torch_fan_out: int | None = None
    attrs: tuple[tuple[str, Any], ...] = field(default=())
    role: str | None = None

    def fan(self, mode: str) -> float:
        """The fan named by ``mode``.

        fan_in, fan_out, fan_avg = (in + out) / 2, or fan_geo_avg = sqrt(in * out).
        """
        if mode == "fan_in":
            return float(self.fan_in)
        if mode == "fan_out":
            return float(self.fan_out)
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2.0
        if mode == "fan_geo_avg":
            return math.sqrt(self.fan_in * self.fan_out)
        raise ValueError(f"unknown fan mode {mode!r}; use one of {', '.join(FAN_MODES)}")

    def for_block(self, block: Block) -> Fans:
        """The fans that apply inside ``block`` (the block's own when it carries them)."""
        if block.fan_in is None and block.fan_out is None:
            return self
        return replace(
            self,
            fan_in=self.fan_in if block.fan_in is None else block.fan_in,
            fan_out=self.fan_out if block.fan_out is None else block.fan_out,
        )

    def attr(self, key: str, default: Any = None) -> Any:
        return dict(self.attrs).get(key, default)

    def block_shapes(self, shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Shapes of the blocks of a tensor of ``shape`` (the whole shape if unpacked)."""
        if not self.blocks:
            return [tuple(shape)]
        out = []
        for b in self.blocks:
            s = list(shape)
            s[b.dim] = b.size
            out.append(tuple(s))
        return out

    def check_blocks(self, shape: Sequence[int]) -> None:
        """Raise ValueError unless the blocks tile ``shape`` exactly along their dimension."""
        if not self.blocks:
            return
        dims = {b.dim for b in self.blocks}
        if len(dims) != 1:
            raise ValueError("all blocks of a packed parameter must lie along one dimension")
        (dim,) = dims
        if not -len(shape) <= dim < len(shape):
            raise ValueError(f"block dimension {dim} is out of range for shape {tuple(shape)}")
        pos = 0
        for b in sorted(self.blocks, key=lambda b: b.start):
            if b.start != pos or b.stop <= b.start:
                raise ValueError(
                    f"blocks {[(b.name, b.start, b.stop) for b in self.blocks]} do not tile "
                    f"dimension {dim} of shape {tuple(shape)}; give contiguous, non-empty blocks"
                )
            pos = b.stop
        if pos != shape[dim]:
            raise ValueError(
                f"blocks cover {pos} of the {shape[dim]} entries of dimension {dim} of shape "
                f"{tuple(shape)}; they must divide the packed dimension exactly"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "blocks": [
                [b.name, b.start, b.stop, b.dim]
                + ([] if b.fan_in is None and b.fan_out is None else [b.fan_in, b.fan_out])
                for b in self.blocks
            ],
            "rule": self.rule,
            "layer": self.layer,
            "param": self.param,
            "torch_fan_in": self.torch_fan_in,
            "torch_fan_out": self.torch_fan_out,
            "attrs": {k: v for k, v in self.attrs},
            "role": self.role,
        }


def torch_fans(shape: Sequence[int]) -> tuple[int, int]:
    """torch.nn.init's shape-only rule.

    fan_in = shape[1]·prod(shape[2:]), fan_out = shape[0]·prod(shape[2:]).

    Raises ValueError for fewer than 2 dimensions, as torch does.

    Args:
        shape: the tensor's shape, torch layout ``[out, in, *kernel]``.

    Returns:
        ``(fan_in, fan_out)``.

    Example:
        >>> torch_fans((32, 4, 3, 3))  # Conv2d(8, 32, 3, groups=2).weight: blind to groups
        (36, 288)
    """
    if len(shape) < 2:
        raise ValueError(
            f"fan_in and fan_out cannot be computed for a tensor with fewer than 2 dimensions "
            f"(shape {tuple(shape)}); pass explicit fans or use a scheme that needs none "
            f"(constant, zeros, ones, normal, uniform)"
        )
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def fans_from_shape(shape: Sequence[int], rule: str = "torch-shape") -> Fans:
    """Fans by torch's shape-only rule (see :func:`torch_fans`).

    fan_in = shape[1]·prod(shape[2:]), fan_out = shape[0]·prod(shape[2:]), also kept as
    ``torch_fan_in``/``torch_fan_out``.

    Args:
        shape: the parameter's shape, torch layout ``[out, in, *kernel]`` (at least 2 dims).
        rule: the label stored in :attr:`Fans.rule`.

    Returns:
        The :class:`Fans`, with no blocks.

    Example:
        >>> f = fans_from_shape((64, 3, 7, 7))  # Conv2d(3, 64, 7).weight
        >>> f.fan_in, f.fan_out, f.torch_fan_in, f.rule
        (147, 3136, 147, 'torch-shape')
    """
    fi, fo = torch_fans(shape)
    return Fans(fi, fo, rule=rule, torch_fan_in=fi, torch_fan_out=fo)


def _norm_axes(axes: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % ndim)
    return tuple(out)


def fans_from_axes(
    shape: Sequence[int],
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
) -> Fans:
    """Fans with explicit axes, as ``jax.nn.initializers.variance_scaling``.

    ``fan_in = prod(shape[in_axis])·receptive``, ``fan_out = prod(shape[out_axis])·receptive``
    where ``receptive`` is the product of every axis that is neither in, out nor batch. The
    defaults follow JAX's ``[..., in, out]`` layout; for a torch ``[out, in, *k]`` weight pass
    ``in_axis=1, out_axis=0``.

    Args:
        shape: the parameter's shape.
        in_axis: the axis (or axes) summed into one output unit.
        out_axis: the axis (or axes) of the output units.
        batch_axis: axes of independent copies, counted in neither fan nor the receptive field.

    Returns:
        The :class:`Fans`, with ``rule="axes"``. ValueError when an axis is out of range or two
        of the groups share one.

    Example:
        >>> f = fans_from_axes((3, 3, 16, 32))  # a JAX HWIO kernel
        >>> f.fan_in, f.fan_out
        (144, 288)
    """
    ndim = len(shape)
    ins, outs, batch = (_norm_axes(a, ndim) for a in (in_axis, out_axis, batch_axis))
    if set(ins) & set(outs) or set(ins) & set(batch) or set(outs) & set(batch):
        raise ValueError(
            f"in_axis {ins}, out_axis {outs} and batch_axis {batch} must not share an axis"
        )
    receptive = math.prod(shape[i] for i in range(ndim) if i not in (*ins, *outs, *batch))
    fi = math.prod(shape[i] for i in ins) * receptive
    fo = math.prod(shape[i] for i in outs) * receptive
    return Fans(int(fi), int(fo), rule="axes", attrs=(("batch_axis", batch),))
