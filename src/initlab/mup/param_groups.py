"""Ordinary torch param groups carrying muP's per-parameter learning rates.

No custom optimizer: each group has ``params``, ``lr`` (the base LR times the parameter's LR
multiplier, :mod:`.parametrization`), ``weight_decay``, and ``name``/``kind``/``lr_mult`` for
reports; ``torch.optim.Adam``/``AdamW``/``SGD`` (fused or foreach too) and any optimizer that
takes param groups accept them and keep the extra keys.

Weight decay. With decoupled decay (AdamW: ``p -= lr * wd * p``) the decay per step is
``lr * wd``, so it scales with the LR multiplier unless ``wd`` is scaled back:

* ``decay="independent"`` (default): ``wd`` is divided by the LR multiplier, so ``lr * wd``
  per step is the base's for every parameter, whatever its muP LR. This is what the mup package
  does (``MuAdam`` multiplies matrix-like groups' ``weight_decay`` by width_mult as it divides
  their LR; ``MuSGD`` likewise; mup/optim.py), and it follows the "independent" weight decay of
  Wortsman et al. 2023 (https://arxiv.org/abs/2309.14322): the decay per step is not tied to
  the (per-parameter) LR.
* ``decay="coupled"``: ``wd`` as given for every group, so the decay per step (``lr * wd``)
  scales with each parameter's LR multiplier (what plain AdamW with muP LRs does).

Coupled L2 decay (``torch.optim.Adam``/``SGD``'s ``weight_decay``, added to the gradient) is
scaled by the same rule; under Adam the gradient normalisation makes its effect width-dependent
either way, so prefer AdamW.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .classify import MupError, canonical
from .parametrization import OPTIMIZERS, Mup

__all__ = ["DECAY_RULES", "mup_param_groups"]

DECAY_RULES = ("independent", "coupled")


def mup_param_groups(
    model: nn.Module,
    m: Mup,
    lr: float,
    weight_decay: float = 0.0,
    *,
    optimizer: str | None = None,
    decay: str = "independent",
) -> list[dict[str, Any]]:
    """Param groups for ``torch.optim`` with muP's learning rates.

    Parameters with equal (kind, LR multiplier) share a group, in model order; tied
    parameters appear once.

    Args:
        model: the model ``m`` was made for (compiled, wrapped or sharded: names are matched
            without wrapper prefixes, shapes are global).
        m: the :class:`~initlab.Mup`.
        lr: the base learning rate (tuned on the base model).
        weight_decay: the base weight decay.
        optimizer: ``"adam"`` (Adam/AdamW) or ``"sgd"``; default ``m.optimizer``.
        decay: ``"independent"`` or ``"coupled"`` (see the module doc).

    Returns:
        A list of dicts with ``params``, ``lr``, ``weight_decay``, ``name`` (the group's
        label), ``kind`` and ``lr_mult``.

    Raises:
        MupError: a parameter ``m`` does not know, a shape that differs, or a bad argument.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> net = lambda w: nn.Sequential(nn.Linear(8, w), nn.ReLU(), nn.Linear(w, w),
        ...                               nn.ReLU(), nn.Linear(w, 10))
        >>> model = net(256)
        >>> m = initlab.mup(model, net(64))
        >>> groups = mup_param_groups(model, m, lr=1e-3, weight_decay=0.1)
        >>> for g in groups:
        ...     print(g["name"], len(g["params"]), g["lr"], g["weight_decay"])
        input x1 1 0.001 0.1
        vector x1 3 0.001 0.1
        hidden x0.25 1 0.00025 0.4
        output x1 1 0.001 0.1
        >>> opt = torch.optim.AdamW(groups)
    """
    opt = optimizer or m.optimizer
    if opt not in OPTIMIZERS:
        raise MupError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {opt!r}")
    if decay not in DECAY_RULES:
        raise MupError(f"decay must be one of {', '.join(DECAY_RULES)}, got {decay!r}")
    if not lr > 0:
        raise MupError(f"lr must be positive, got {lr!r}")
    if weight_decay < 0:
        raise MupError(f"weight_decay must be >= 0, got {weight_decay!r}")
    groups: dict[tuple[str, float], dict[str, Any]] = {}
    seen: set[int] = set()
    unknown: list[str] = []
    for qualname, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        name = canonical(qualname)
        p = m.params.get(name)
        if p is None:
            unknown.append(name)
            continue
        if tuple(param.shape) != p.shape:
            raise MupError(
                f"parameter {name} has shape {tuple(param.shape)} but the Mup was made for "
                f"{p.shape}: make the Mup from this model (initlab.mup(model, base))"
            )
        mult = p.lr_mult_adam if opt == "adam" else p.lr_mult_sgd
        kind = p.kind
        group = groups.get((kind, mult))
        if group is None:
            wd = weight_decay / mult if decay == "independent" else weight_decay
            group = groups[(kind, mult)] = {
                "params": [],
                "lr": lr * mult,
                "weight_decay": wd,
                "name": f"{kind} x{mult:.6g}",
                "kind": kind,
                "lr_mult": mult,
            }
        group["params"].append(param)
    if unknown:
        raise MupError(
            f"parameter(s) {', '.join(unknown[:5])} are not in the Mup: make it from this model "
            "(initlab.mup(model, base))"
        )
    return list(groups.values())
