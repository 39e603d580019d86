"""``torch_default``: exactly what each torch layer's ``reset_parameters`` does to a parameter.

The scheme reads layer-aware fans from :func:`initlab.fans.compute_fans` (``rule``, ``param``,
``torch_fan_in``/``torch_fan_out`` and ``attrs``) and replays torch's arithmetic and random calls,
so that with the same generator state the values are bit-identical to a freshly built layer:

* Linear, Conv*, ConvTranspose*: weight ``kaiming_uniform_(a=sqrt(5))`` on torch's shape-rule
  fan_in, i.e. ``U(±1/sqrt(fan_in))``; bias ``U(±1/sqrt(fan_in))`` (bound 0 when fan_in is 0).
* Bilinear: weight and bias ``U(±1/sqrt(in1_features))``.
* Embedding / EmbeddingBag: ``N(0, 1)``, the ``padding_idx`` row zero.
* RNN, LSTM, GRU and their cells: every parameter ``U(±1/sqrt(hidden_size))``.
* MultiheadAttention: ``in_proj_weight`` (packed, as one ``[3E, E]`` tensor) and
  ``q/k/v_proj_weight`` ``xavier_uniform_``; ``in_proj_bias`` 0; ``bias_k``/``bias_v``
  ``xavier_normal_``; ``out_proj.bias`` 0 when reached as ``compute_fans(mha, "out_proj.bias")``.
* Norm layers: weight 1, bias 0. PReLU: its ``init`` value (0.25 by default).

Dispatch is by layer family (``fans.rule``), so subclasses get their base class's init; a
subclass that overrides ``reset_parameters`` is not followed. Model-level re-inits (e.g.
``nn.Transformer._reset_parameters``, which xavier-initialises every matrix) are not covered.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor
from torch.nn.init import calculate_gain

from ..fans import Fans
from ..rng import RandomSource
from .base import Scheme, _normalise_index, register_scheme

# A plan: (distribution, p1, p2) with distribution "uniform" (low, high), "normal" (mean, std)
# or "constant" (value, unused); plus the Embedding row to zero afterwards (or None).
Plan = tuple[str, float, float, int | None]

_NEEDS_FANS = (
    "torch_default needs layer-aware fans: pass fans=initlab.compute_fans(module, name) "
    "(default convention 'layer')"
)


def _kaiming_uniform_a_sqrt5(fan: int) -> float:
    """torch.nn.init.kaiming_uniform_(a=sqrt(5)) bound, with torch's exact arithmetic."""
    gain = calculate_gain("leaky_relu", math.sqrt(5))
    std = gain / math.sqrt(fan)
    return math.sqrt(3.0) * std


def _xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """The std of torch.nn.init.xavier_uniform_/xavier_normal_ (same expression as torch)."""
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def _torch_fans(fans: Fans) -> tuple[int, int]:
    if fans.torch_fan_in is None or fans.torch_fan_out is None:
        raise ValueError(
            f"torch_default: fans of {fans.layer}.{fans.param} carry no torch_fan_in/"
            f"torch_fan_out; {_NEEDS_FANS}"
        )
    return fans.torch_fan_in, fans.torch_fan_out


def plan(fans: Fans | None) -> Plan:
    """What torch's ``reset_parameters`` draws for the parameter described by ``fans``."""
    if fans is None or fans.layer is None or fans.param is None or fans.rule == "torch-shape":
        raise ValueError(_NEEDS_FANS)
    rule, name = fans.rule, fans.param
    where = f"{fans.layer}.{name}"
    if fans.attr("torch_init") == "zeros":
        return ("constant", 0.0, 0.0, None)
    if rule in ("linear", "conv", "conv-transpose"):
        fan_in, _ = _torch_fans(fans)
        if name == "weight":
            if fan_in == 0:
                return ("constant", 0.0, 0.0, None)  # torch: zero-element tensor, a no-op
            b = _kaiming_uniform_a_sqrt5(fan_in)
            return ("uniform", -b, b, None)
        if name == "bias":
            b = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            return ("uniform", -b, b, None)
    elif rule == "bilinear" and name in ("weight", "bias"):
        in1 = int(fans.attr("in1_features", 0))
        if in1 <= 0:
            raise ValueError(f"torch_default: {where}: in1_features must be > 0, got {in1}")
        b = 1 / math.sqrt(in1)
        return ("uniform", -b, b, None)
    elif rule == "embedding" and name == "weight":
        return ("normal", 0.0, 1.0, fans.attr("padding_idx"))
    elif rule == "rnn":
        h = int(fans.attr("hidden_size", 0))
        stdv = 1.0 / math.sqrt(h) if h > 0 else 0
        return ("uniform", -stdv, stdv, None)
    elif rule == "mha":
        if name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            a = math.sqrt(3.0) * _xavier_std(*_torch_fans(fans))
            return ("uniform", -a, a, None)
        if name == "in_proj_bias":
            return ("constant", 0.0, 0.0, None)
        if name in ("bias_k", "bias_v"):
            return ("normal", 0.0, _xavier_std(*_torch_fans(fans)), None)
    elif rule == "norm-elementwise" and name in ("weight", "bias"):
        return ("constant", 1.0 if name == "weight" else 0.0, 0.0, None)
    elif rule == "prelu-elementwise":
        return ("constant", float(fans.attr("init", 0.25)), 0.0, None)
    raise ValueError(
        f"torch_default: no torch default is known for {where} (rule {rule!r}); "
        f"choose an explicit scheme for this parameter"
    )


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
        zero_row = plan(fans)[3]
        if zero_row is not None:
            rows = _normalise_index(index, tuple(global_shape))[0]
            row = zero_row % global_shape[0]
            if rows.start <= row < rows.stop:
                with torch.no_grad():
                    local[row - rows.start].fill_(0)
        return local

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        dist, p1, p2, zero_row = plan(fans)
        if dist == "uniform":
            rng.uniform_(t, p1, p2)
        elif dist == "normal":
            rng.normal_(t, p1, p2)
        elif p1 == 0.0:
            t.zero_()
        else:
            t.fill_(p1)
        if zero_row is not None and not getattr(rng, "in_window", False):
            t[zero_row].fill_(0)  # in a window, fill_window zeroes the row where it lies

    def target_std(self, fans: Fans | None) -> float | None:
        dist, p1, p2, _ = plan(fans)
        if dist == "uniform":
            return (p2 - p1) / math.sqrt(12.0)
        if dist == "normal":
            return float(p2)
        return 0.0
