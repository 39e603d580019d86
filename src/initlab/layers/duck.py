"""Duck-typed layers: norms of any library, recognised by name and shape.

Libraries define their own norm classes (transformers' ``LlamaRMSNorm``, ``T5LayerNorm``,
timm's ``LayerNorm2d``...) that are not subclasses of torch's. A module is a **norm** when
its class name ends in ``RMSNorm``, ``LayerNorm`` or ``Norm`` and it has a 1-D ``weight``
parameter and, optionally, a 1-D ``bias``: the weight is a norm scale, the bias a norm shift,
both element-wise (``fan_in = fan_out = 1``) with torch's norm defaults (1 and 0). A class
registered by class or name always wins over this predicate.
"""

from __future__ import annotations

from torch import Tensor, nn

from .defaults import TorchInit
from .registry import register_layer
from .spec import ELEMENTWISE, LayerSpec, ParamSpec

__all__ = ["DUCK_NORM", "is_duck_norm"]


def _one_d(t: object) -> bool:
    return isinstance(t, Tensor) and t.dim() == 1


def is_duck_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a norm by duck typing (see the module docstring).

    Args:
        module: any module.

    Returns:
        True for a ``*Norm`` class with a 1-D ``weight`` parameter and no bias or a 1-D one.

    Example:
        >>> import torch
        >>> class MyRMSNorm(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.weight = nn.Parameter(torch.ones(8))
        >>> is_duck_norm(MyRMSNorm()), is_duck_norm(nn.Linear(2, 2))
        (True, False)
    """
    if not type(module).__name__.endswith("Norm"):
        return False
    weight = module._parameters.get("weight")
    bias = module._parameters.get("bias")
    return _one_d(weight) and (bias is None or _one_d(bias))


DUCK_NORM = LayerSpec(
    "norm-duck",
    {
        "weight": ParamSpec("norm_scale", ELEMENTWISE, torch_init=TorchInit("constant", 1.0)),
        "bias": ParamSpec("norm_shift", ELEMENTWISE, torch_init=TorchInit("constant", 0.0)),
    },
)
register_layer(is_duck_norm, DUCK_NORM)
