"""The weight-bearing layers of a model, as the layer registry sees them.

One walk over a model, shared by the tools that act on "every layer" (LSUV, the scheme
comparison, diagnose): :func:`weight_params` yields each parameter whose layer the registry
knows, with the role asked for (default ``"weight"``: Linear, Conv, ConvTranspose, Bilinear,
transformers' ``Conv1D`` ``[in, out]``, MultiheadAttention's and timm's fused q/k/v, RNN
weights...), its registry fans and blocks (computed from the model, so a parent that describes
a child's parameter, as timm's ``Attention`` does for ``qkv.weight``, is heard), and whether it
is an alias of a parameter met earlier in module order (a tied ``lm_head.weight`` is an alias
of ``wte.weight``). :func:`unknown_params` lists the parameters of 2 or more dimensions whose
layer the registry does not know (their fans would be guessed from the shape).

Embeddings (role ``"embedding"``), position tables and class tokens are not ``"weight"``: their
output is a row lookup, not a sum over ``fan_in`` inputs. Each tool says which roles it acts on.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    >>> model[1].weight = model[0].weight  # a tied readout
    >>> [(w.qualname, w.role, w.tied_to) for w in weight_params(model, roles=None)]
    [('0.weight', 'embedding', None), ('1.weight', 'weight', '0.weight'), ('1.bias', 'bias', None)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator

from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from ..fans import Block, Fans
from .compute import compute_fans
from .spec import ROLES

__all__ = ["WeightParam", "unknown_params", "weight_params"]


@dataclasses.dataclass(frozen=True)
class WeightParam:
    """One registry-known parameter of a model, where it lives and what it connects.

    Attributes:
        module_name: the owning module's qualified name (``""`` for the model itself).
        module: the owning module (the one whose forward uses the parameter directly).
        param_name: the parameter's name in ``module`` (``"weight"``).
        fans: its registry :class:`~initlab.fans.Fans` (role, blocks, rule).
        tied_to: the qualified name of the same tensor under its first owner in module order,
            when this is an alias (a tied ``lm_head.weight``); None for the first owner.

    Example:
        >>> from torch import nn
        >>> w = weight_params(nn.Sequential(nn.Linear(3, 2)))[0]
        >>> w.qualname, w.kind, (w.fans.fan_in, w.fans.fan_out), w.role, w.blocks, w.tied_to
        ('0.weight', 'Linear', (3, 2), 'weight', (), None)
    """

    module_name: str
    module: nn.Module
    param_name: str
    fans: Fans
    tied_to: str | None = None

    @property
    def qualname(self) -> str:
        """The parameter's qualified name in the model."""
        return f"{self.module_name}.{self.param_name}" if self.module_name else self.param_name

    @property
    def kind(self) -> str:
        """The owning module's class name."""
        return type(self.module).__name__

    @property
    def role(self) -> str:
        """The parameter's role in the registry (``"weight"``, ``"bias"``...)."""
        return self.fans.role or ""

    @property
    def blocks(self) -> tuple[Block, ...]:
        """Its packed blocks (q/k/v, gates), empty when it is one block."""
        return self.fans.blocks

    @property
    def tensor(self) -> Tensor:
        """The parameter itself."""
        return getattr(self.module, self.param_name)


def _walk(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, Tensor, str | None]]:
    """(module name, module, parameter name, parameter, first owner's qualname or None), in
    module order; a module reachable under two names is visited once, under the first."""
    first: dict[int, str] = {}
    for mod_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False, remove_duplicate=False):
            qual = f"{mod_name}.{pname}" if mod_name else pname
            owner = first.setdefault(id(param), qual)
            yield mod_name, module, pname, param, None if owner == qual else owner


def weight_params(
    model: nn.Module, roles: Collection[str] | None = ("weight",)
) -> list[WeightParam]:
    """The parameters of ``model`` whose layer the registry knows, with a role in ``roles``.

    Args:
        model: any ``nn.Module``.
        roles: the registry roles to keep (``("weight", "bias")``...), or None for every role.

    Returns:
        One :class:`WeightParam` per (module, parameter) in module order; a tied parameter
        appears under each owner, ``tied_to`` naming its first owner on the later ones.
        Uninitialised lazy parameters and parameters with no registry rule are left out
        (:func:`unknown_params` lists the latter).

    Raises:
        ValueError: a role that is not one of :data:`~initlab.layers.spec.ROLES`.

    Example:
        >>> from transformers.pytorch_utils import Conv1D
        >>> [(w.qualname, w.fans.fan_in, w.fans.fan_out, [b.name for b in w.blocks])
        ...  for w in weight_params(nn.ModuleDict({"c_attn": Conv1D(192, 64)}))]
        [('c_attn.weight', 64, 64, ['q', 'k', 'v'])]
    """
    if isinstance(roles, str):
        roles = (roles,)
    wanted = None if roles is None else set(roles)
    if wanted is not None and wanted - set(ROLES):
        raise ValueError(
            f"weight_params: unknown role(s) {', '.join(sorted(wanted - set(ROLES)))}; the "
            f"registry's roles are {', '.join(ROLES)}"
        )
    out = []
    for mod_name, module, pname, param, tied_to in _walk(model):
        fans = _registry_fans(model, mod_name, pname, param)
        if fans is not None and (wanted is None or fans.role in wanted):
            out.append(WeightParam(mod_name, module, pname, fans, tied_to))
    return out


def unknown_params(model: nn.Module) -> list[tuple[str, str]]:
    """``(qualified name, layer class)`` of each parameter of 2 or more dimensions whose layer
    the registry does not describe (its fans would be torch's shape rule), first owners only.

    Args:
        model: any ``nn.Module``.

    Returns:
        The list, in module order.

    Example:
        >>> import torch
        >>> class Scale(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.kernel = nn.Parameter(torch.ones(2, 3))
        >>> unknown_params(nn.Sequential(Scale(), nn.Linear(3, 3)))
        [('0.kernel', 'Scale')]
    """
    return [
        (f"{mod_name}.{pname}" if mod_name else pname, type(module).__name__)
        for mod_name, module, pname, param, tied_to in _walk(model)
        if tied_to is None
        and param.dim() >= 2
        and not is_lazy(param)
        and _registry_fans(model, mod_name, pname, param) is None
    ]


def _registry_fans(model: nn.Module, mod_name: str, pname: str, param: Tensor) -> Fans | None:
    if is_lazy(param):
        return None
    try:  # from the model, so that a parent describing its child's parameter is heard
        fans = compute_fans(model, f"{mod_name}.{pname}" if mod_name else pname)
    except (ValueError, TypeError):
        return None
    return None if fans.rule == "shape-fallback" else fans
