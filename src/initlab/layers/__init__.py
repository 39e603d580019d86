"""The layer registry: everything initlab knows about a layer type, in one place.

For each registered layer type (:mod:`.registry`: a class matched through the MRO, a dotted
class name resolved once imported, or a predicate) a :class:`LayerSpec` (:mod:`.spec`) gives per
parameter its layout (fan axes), blocks, role, padding row and torch default
(:mod:`.defaults`), and the values of the layer's buffers. :func:`compute_fans`
(:mod:`.compute`) reads it; torch's built-in layers register in :mod:`.torch_nn`; transformers',
timm's and torchvision's (by dotted class name, never importing them) in :mod:`.hf`,
:mod:`.timm` and :mod:`.torchvision`; norms of any library (``*RMSNorm``/``*LayerNorm`` with a
1-D weight) by duck typing in :mod:`.duck`. :func:`weight_params` (:mod:`.weights`) lists a
model's weight-bearing layers as the registry sees them, for the tools that act on every layer.

Example:
    >>> from torch import nn
    >>> f = compute_fans(nn.MultiheadAttention(64, 4), "in_proj_weight")
    >>> f.fan_in, f.fan_out, [b.name for b in f.blocks], f.role
    (64, 64, ['q', 'k', 'v'], 'weight')
"""

from . import duck, hf, timm, torch_nn, torchvision  # noqa: F401  (register the built-in layers)
from .compute import compute_fans, explain_fans, layer_fans
from .defaults import TORCH_INIT_KINDS, Draw, TorchInit, torch_draw
from .registry import (
    LayerKey,
    child_torch_init,
    claims_child,
    find_layer,
    keep_structure_,
    known_buffer,
    padding_row,
    register_layer,
    unregister_layer,
)
from .spec import ELEMENTWISE, LINEAR, ROLES, LayerSpec, Layout, ParamSpec
from .torch_nn import GRU_GATES, LSTM_GATES
from .weights import WeightParam, unknown_params, weight_params

__all__ = [
    "ELEMENTWISE",
    "GRU_GATES",
    "LINEAR",
    "LSTM_GATES",
    "ROLES",
    "TORCH_INIT_KINDS",
    "Draw",
    "LayerKey",
    "LayerSpec",
    "Layout",
    "ParamSpec",
    "TorchInit",
    "WeightParam",
    "child_torch_init",
    "claims_child",
    "compute_fans",
    "explain_fans",
    "find_layer",
    "keep_structure_",
    "known_buffer",
    "layer_fans",
    "padding_row",
    "register_layer",
    "torch_draw",
    "unknown_params",
    "unregister_layer",
    "weight_params",
]
