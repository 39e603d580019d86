"""``torch_default``: exactly what each torch layer's ``reset_parameters`` does to a parameter.

The layer registry (:mod:`initlab.layers`) records each parameter's default in its fans
(``attrs["torch_init"]``, a :class:`~initlab.layers.TorchInit`), and its padding row; this
scheme replays torch's arithmetic and random calls on it, so that with the same generator state
the values are bit-identical to a freshly built layer (see :mod:`initlab.layers.torch_nn` for
the defaults of torch's layers: Linear/Conv ``kaiming_uniform_(a=sqrt(5))``, Embedding
``N(0, 1)`` with the ``padding_idx`` row zero, MultiheadAttention ``xavier_uniform_`` and a zero
``out_proj.bias`` when reached as ``compute_fans(mha, "out_proj.bias")``, norms 1 and 0...).

Lookup is by layer type through the MRO, so subclasses get their base class's init; a subclass
that overrides ``reset_parameters`` is not followed. Model-level re-inits (e.g.
``nn.Transformer._reset_parameters``, which xavier-initialises every matrix) are not covered.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from ..fans import Fans
from ..layers import Draw, TorchInit, padding_row, torch_draw
from ..rng import RandomSource
from .base import Scheme, _normalise_index, register_scheme

_NEEDS_FANS = (
    "torch_default needs layer-aware fans: pass fans=initlab.compute_fans(module, name) "
    "(default convention 'layer')"
)


def default_draw(fans: Fans | None) -> Draw:
    """What torch's ``reset_parameters`` draws for the parameter described by ``fans``.

    Args:
        fans: the parameter's layer-aware fans (``initlab.compute_fans(module, name)``).

    Returns:
        ``("uniform", low, high)``, ``("normal", mean, std)`` or ``("constant", value, 0.0)``.

    Example:
        >>> from torch import nn
        >>> from initlab.layers import compute_fans
        >>> default_draw(compute_fans(nn.Linear(16, 4), "bias"))
        ('uniform', -0.25, 0.25)
    """
    if fans is None or fans.layer is None or fans.param is None or fans.rule == "torch-shape":
        raise ValueError(_NEEDS_FANS)
    init = fans.attr("torch_init")
    if init is None:
        raise ValueError(
            f"torch_default: no torch default is known for {fans.layer}.{fans.param} (rule "
            f"{fans.rule!r}); choose an explicit scheme for this parameter"
        )
    return torch_draw(TorchInit.parse(init), fans)


def _zero_row(fans: Fans | None, rows: int) -> int | None:
    return None if fans is None or fans.param is None else padding_row(fans.param, rows, fans=fans)


@register_scheme(aliases=("pytorch_default",))
@dataclasses.dataclass(frozen=True)
class TorchDefault(Scheme):
    """What the owning torch layer's ``reset_parameters`` does, bit for bit (see module doc)."""

    name = "torch_default"
    formula = (
        "Linear/Conv: U(±1/sqrt(torch fan_in)); RNN: U(±1/sqrt(hidden)); Embedding: N(0,1); "
        "MHA in_proj: xavier_uniform; norms: 1/0"
    )
    paper = "PyTorch torch.nn layer defaults"
    uses_fans = False  # dispatches by itself on the layer; packed tensors are drawn whole
    elementwise = True  # one draw per parameter; the padding row is re-zeroed in fill_window

    def fill_window(self, local, global_shape, index, fans, stream):  # type: ignore[no-untyped-def]
        super().fill_window(local, global_shape, index, fans, stream)
        row = _zero_row(fans, global_shape[0]) if global_shape else None
        if row is not None:
            rows = _normalise_index(index, tuple(global_shape))[0]
            if rows.start <= row < rows.stop:
                with torch.no_grad():
                    local[row - rows.start].fill_(0)
        return local

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        dist, p1, p2 = default_draw(fans)
        if dist == "uniform":
            rng.uniform_(t, p1, p2)
        elif dist == "normal":
            rng.normal_(t, p1, p2)
        elif p1 == 0.0:
            t.zero_()
        else:
            t.fill_(p1)
        # in a window, fill_window zeroes the row where it lies
        in_window = getattr(rng, "in_window", False)
        zero_row = _zero_row(fans, t.shape[0]) if t.dim() and not in_window else None
        if zero_row is not None:
            t[zero_row].fill_(0)

    def target_std(self, fans: Fans | None) -> float | None:
        dist, p1, p2 = default_draw(fans)
        if dist == "uniform":
            return (p2 - p1) / math.sqrt(12.0)
        if dist == "normal":
            return float(p2)
        return 0.0
