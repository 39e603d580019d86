"""Layer-aware fans: the data model (:mod:`.core`) and per-layer rules (:mod:`.layers`)."""

from .core import FAN_MODES, Block, FanMode, Fans, fans_from_axes, fans_from_shape, torch_fans
from .layers import compute_fans, explain_fans

__all__ = [
    "FAN_MODES",
    "Block",
    "FanMode",
    "Fans",
    "compute_fans",
    "explain_fans",
    "fans_from_axes",
    "fans_from_shape",
    "torch_fans",
]
