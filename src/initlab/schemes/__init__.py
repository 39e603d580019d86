"""The scheme catalogue: every scheme is a small immutable, serialisable object.

Importing this package registers every built-in scheme; ``get_scheme(name, **params)`` finds
one by name (or alias), ``list_schemes()`` lists them, and ``register_scheme`` adds yours.
"""

from . import basic, custom, orthogonal, structured, torch_default, variance
from .base import (
    Scheme,
    aliases,
    get_scheme,
    list_schemes,
    register_scheme,
    scheme_class,
)
from .basic import Constant, Normal, Ones, TruncNormal, Uniform, Zeros
from .custom import Custom
from .orthogonal import DeltaOrthogonal, Orthogonal
from .structured import Dirac, Eye, Identity, Scaled, Sparse, ZerO, fixup_scale
from .torch_default import TorchDefault
from .variance import (
    KaimingNormal,
    KaimingUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
)

__all__ = [
    "Constant",
    "Custom",
    "DeltaOrthogonal",
    "Dirac",
    "Eye",
    "Identity",
    "KaimingNormal",
    "KaimingUniform",
    "LecunNormal",
    "LecunUniform",
    "Normal",
    "Ones",
    "Orthogonal",
    "Scaled",
    "Scheme",
    "Sparse",
    "TorchDefault",
    "TruncNormal",
    "Uniform",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
    "ZerO",
    "Zeros",
    "aliases",
    "basic",
    "custom",
    "fixup_scale",
    "get_scheme",
    "list_schemes",
    "orthogonal",
    "register_scheme",
    "scheme_class",
    "structured",
    "torch_default",
    "variance",
]
