"""initlab: layer-aware, reproducible, measurable parameter initialisation for PyTorch.

* ``initlab.init``: a drop-in for ``torch.nn.init`` (same names, signatures, numbers).
* ``initlab.compute_fans``: fans and packed-block structure from what a layer connects.
* ``initlab.calculate_gain`` (torch's table) and ``initlab.gain`` (any activation).
* ``initlab.get_scheme``: every scheme as a small serialisable object.
"""

from . import init
from .fans import Block, Fans, compute_fans, fans_from_axes, fans_from_shape
from .gain import calculate_gain, gain
from .rng import RandomSource, TorchSource
from .schemes import (
    Scheme,
    aliases,
    fixup_scale,
    get_scheme,
    list_schemes,
    register_scheme,
    scheme_class,
)

__version__ = "0.1.0"

__all__ = [
    "Block",
    "Fans",
    "RandomSource",
    "Scheme",
    "TorchSource",
    "__version__",
    "aliases",
    "calculate_gain",
    "compute_fans",
    "fans_from_axes",
    "fans_from_shape",
    "fixup_scale",
    "gain",
    "get_scheme",
    "init",
    "list_schemes",
    "register_scheme",
    "scheme_class",
]
