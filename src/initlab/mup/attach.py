"""Attaching muP's forward-time multipliers to a model, removably, without replacing a class.

* **readouts**: a forward pre-hook multiplies a readout's input by ``1/width_mult``, as the mup
  package's ``MuReadout`` does (``Linear(x / width_mult)``: the weight's effective value is
  W / width_mult; a bias is not scaled);
* **attention**: where a module exposes its logit scale (``scaling``/``scale``), it is multiplied
  by the factor from :mod:`.attention`;
* **depth** (opt-in): a forward hook multiplies each residual branch's output.

``handle.remove()`` removes the hooks and restores the scales. A model is attached once at a
time (a second ``attach`` before ``remove`` refuses), so multipliers never stack.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .attention import AttentionScale
from .classify import MupError, canonical

__all__ = ["MupHandle", "attach"]

_ATTACHED: weakref.WeakSet[nn.Module] = weakref.WeakSet()


class MupHandle:
    """What :func:`attach` did to a model; ``remove()`` undoes it.

    Args:
        touched: the modules it changed (made by :func:`attach`, not by hand).

    Attributes:
        readouts: readout module name -> input multiplier (1/width_mult).
        attention: attention module name -> (attribute, old value, new value).
        branches: residual branch module name -> output multiplier.

    Example:
        >>> from torch import nn
        >>> head = nn.Linear(4, 2)
        >>> h = attach(nn.Sequential(head), {"0": 0.5})
        >>> print(h)
        MupHandle: 1 readout hook(s) (0: input x 0.5), 0 attention scale(s), 0 branch hook(s)
        >>> h.remove(); len(head._forward_pre_hooks)
        0
    """

    def __init__(self, touched: list[nn.Module]) -> None:
        self._touched = touched
        self._hooks: list[RemovableHandle] = []
        self._restore: list[tuple[nn.Module, str, Any]] = []
        self.readouts: dict[str, float] = {}
        self.attention: dict[str, tuple[str, float, float]] = {}
        self.branches: dict[str, float] = {}
        self.removed = False

    def remove(self) -> None:
        """Remove every hook and restore every attention scale (idempotent).

        Example:
            >>> from torch import nn
            >>> h = attach(nn.Linear(2, 2), {"": 0.5})
            >>> h.remove(); h.remove(); h.removed
            True
        """
        for hook in self._hooks:
            hook.remove()
        for module, attr, old in reversed(self._restore):
            setattr(module, attr, old)
        self._hooks, self._restore = [], []
        for module in self._touched:
            _ATTACHED.discard(module)
        self.removed = True

    def __enter__(self) -> MupHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        shown = ", ".join(f"{n or '(root)'}: input x {m:.6g}" for n, m in self.readouts.items())
        state = " (removed)" if self.removed else ""
        return (
            f"MupHandle{state}: {len(self.readouts)} readout hook(s)"
            f"{f' ({shown})' if shown else ''}, {len(self.attention)} attention scale(s), "
            f"{len(self.branches)} branch hook(s)"
        )


def _scale_input(mult: float):  # type: ignore[no-untyped-def]
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args or not isinstance(args[0], Tensor):
            raise MupError(
                f"muP readout hook: {type(module).__name__} got no tensor as first input"
            )
        return (args[0] * mult, *args[1:])

    return hook


def _scale_output(mult: float):  # type: ignore[no-untyped-def]
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, Tensor):
            return output * mult
        if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
            return (output[0] * mult, *output[1:])
        raise MupError(f"muP branch hook: cannot scale the output of {type(module).__name__}")

    return hook


def attach(
    model: nn.Module,
    readouts: Mapping[str, float],
    attention: Sequence[AttentionScale] = (),
    branches: Mapping[str, float] | None = None,
) -> MupHandle:
    """Register the readout multipliers, set attention scales, scale residual branches.

    Everything is checked before anything is registered: a missing module or an attached
    model raises with the model untouched.

    Args:
        model: the model (compiled, wrapped or sharded: modules are found by canonical name).
        readouts: readout module name -> input multiplier.
        attention: the attention modules; only settable ones change.
        branches: residual branch module name -> output multiplier.

    Returns:
        The :class:`MupHandle`.

    Raises:
        MupError: a named module missing from the model, or the model already attached.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2, bias=False))
        >>> x = torch.ones(1, 2)
        >>> before = net(x)
        >>> with attach(net, {"0": 0.25}):
        ...     torch.equal(net(x), before * 0.25)
        True
    """
    modules = {canonical(n): m for n, m in model.named_modules()}
    branches = dict(branches or {})
    wanted = [*readouts, *(a.module for a in attention if a.settable), *branches]
    missing = [n for n in wanted if n not in modules]
    if missing:
        raise MupError(
            f"module(s) {', '.join(missing[:5])} not in the model: attach the Mup to the model "
            "it was made for"
        )
    touched = [modules[n] for n in wanted]
    if any(m in _ATTACHED for m in touched):
        raise MupError("muP is already attached to this model: call handle.remove() first")
    handle = MupHandle(touched)
    for name, mult in readouts.items():
        handle._hooks.append(modules[name].register_forward_pre_hook(_scale_input(mult)))
        handle.readouts[name] = mult
    for a in attention:
        if not a.settable or a.factor == 1.0:
            continue
        module = modules[a.module]
        old = getattr(module, a.attr)  # type: ignore[arg-type]
        setattr(module, a.attr, old * a.factor)  # type: ignore[arg-type]
        handle._restore.append((module, a.attr, old))  # type: ignore[arg-type]
        handle.attention[a.module] = (a.attr, old, old * a.factor)  # type: ignore[arg-type]
    for name, mult in branches.items():
        handle._hooks.append(modules[name].register_forward_hook(_scale_output(mult)))
        handle.branches[name] = mult
    _ATTACHED.update(touched)
    return handle
