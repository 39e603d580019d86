"""Buffers of a model built on the meta device: which value each gets, made before commit.

A buffer that is already real (``meta_build()`` lets the module's own code make buffers) is
kept as built, moved to the target device, with its dtype. For buffers on meta
(``meta_build(include_buffers=True)``, ``torch.device("meta")``): BatchNorm/InstanceNorm
``running_mean`` 0, ``running_var`` 1 and ``num_batches_tracked`` 0 are known (the layers
define them); any other buffer needs ``buffers={"name or glob": init}`` from the user, where
``init`` is a number (fill), a tensor (copied) or a callable receiving the empty buffer (fill
it in place, or return a tensor to copy). Tied buffers are made once.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..layers import known_buffer

__all__ = ["BufferInit", "BufferSpec", "MaterializeError", "make_buffer", "owners", "plan_buffers"]

#: a buffer initialiser: a number (fill), a tensor (copy) or fn(empty_buffer) -> None | Tensor
BufferInit = Callable[[Tensor], Any] | float | int | bool | Tensor


class MaterializeError(ValueError):
    """The model cannot be materialised as asked; nothing was allocated or written.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> try:
        ...     initlab.materialize(nn.Linear(2, 2), "kaiming", 0)  # not built on meta
        ... except initlab.MaterializeError as e:
        ...     print(type(e).__name__, e)
        MaterializeError materialize expects a model built on the meta device (...), but 2
        parameter(s) already have storage: weight, bias. For a model that has storage use
        initlab.initialize(model, policy, seed)
    """


@dataclasses.dataclass
class BufferSpec:
    """One buffer (tied buffers once): its names, meta tensor and initialiser.

    Attributes:
        qualname: the buffer's first qualified name.
        owners: every ``(module, attribute)`` that holds it.
        aliases: its other qualified names (a tied buffer).
        meta: the meta tensor it replaces (shape, dtype).
        init: the initialiser: a number, a tensor or a callable (see ``materialize``).
        source: ``"user"``, ``"built"`` (a real buffer the module made, kept as it is) or the
            known default that set it (``"BatchNorm1d.running_var"``).
        persistent: whether it belongs to the state dict.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> with initlab.meta_build(include_buffers=True):
        ...     bn = nn.BatchNorm1d(3)
        >>> spec = plan_buffers(bn)[1]
        >>> spec.qualname, spec.init, spec.source, spec.persistent
        ('running_var', 1, 'BatchNorm1d.running_var', True)
        >>> with initlab.meta_build():  # buffers real: kept as the module built them
        ...     bn = nn.BatchNorm1d(3)
        >>> plan_buffers(bn)[1].source
        'built'
    """

    qualname: str
    owners: list[tuple[nn.Module, str]]
    aliases: list[str]  # the other qualified names of a tied buffer
    meta: Tensor
    init: BufferInit
    source: str  # "user", "built" (a real buffer, kept) or the known default that set it
    persistent: bool


def owners(model: nn.Module, attr: str) -> dict[int, list[tuple[nn.Module, str, str]]]:
    """id(tensor) -> every (module, attribute, qualified name) holding it, in model order.

    Args:
        model: the model to walk (shared modules and tied tensors included).
        attr: ``"_parameters"`` or ``"_buffers"``.

    Returns:
        The holders of each tensor, by the tensor's id.

    Example:
        >>> from torch import nn
        >>> lin = nn.Linear(2, 2)
        >>> held = owners(nn.Sequential(lin, lin), "_parameters")  # one Linear, used twice
        >>> [full for _, _, full in held[id(lin.weight)]]
        ['0.weight', '1.weight']
    """
    out: dict[int, list[tuple[nn.Module, str, str]]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for name, t in getattr(module, attr).items():
            if t is not None:
                full = f"{mod_name}.{name}" if mod_name else name
                out.setdefault(id(t), []).append((module, name, full))
    return out


def plan_buffers(
    model: nn.Module, buffers: Mapping[str, BufferInit] | None = None
) -> list[BufferSpec]:
    """Resolve every buffer's initialiser (user's first, then known defaults); raise for the
    rest, naming all of them.

    Args:
        model: the model built on meta.
        buffers: initialisers by buffer name or glob (a number, a tensor or a callable).

    Returns:
        One :class:`BufferSpec` per buffer (tied buffers once). :class:`MaterializeError` for a
        buffer with no initialiser, a name that matches no buffer, or a bad initialiser.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     m = nn.Linear(2, 2)
        ...     m.register_buffer("scale", torch.empty(2))
        >>> [(s.qualname, s.init, s.source) for s in plan_buffers(m, {"scale": 0.5})]
        [('scale', 0.5, 'user')]
    """
    user = dict(buffers or {})
    specs, unknown = [], []
    used: set[str] = set()
    for entries in owners(model, "_buffers").values():
        names = [full for _, _, full in entries]
        module, attr, qualname = entries[0]
        init = source = None
        for pattern, value in user.items():
            if any(n == pattern or fnmatch.fnmatchcase(n, pattern) for n in names):
                init, source = value, "user"
                used.add(pattern)
                break
        if source is None and not module._buffers[attr].is_meta:
            init, source = module._buffers[attr], "built"
        if source is None:
            known = known_buffer(module, attr)
            if known is None:
                unknown.append(qualname)
                continue
            init, source = known
        persistent = attr not in module._non_persistent_buffers_set
        specs.append(BufferSpec(qualname, [(m, a) for m, a, _ in entries], names[1:],
                                module._buffers[attr], init, source, persistent))  # fmt: skip
    if unknown:
        raise MaterializeError(
            f"initlab does not know the value of buffer(s) {', '.join(unknown)}: build the model "
            "with initlab.meta_build() (buffers made by the module's own code), or supply them: "
            "buffers={" + repr(unknown[0]) + ": value} in Python (a number, a tensor to copy, "
            "or fn(empty_tensor)), or `initlab init --buffers FILE` (a safetensors or .pt file "
            "of name -> tensor)"
        )
    unused = sorted(set(user) - used)
    if unused:
        raise MaterializeError(f"buffers= names no buffer of the model: {', '.join(unused)}")
    for spec in specs:
        _check_init(spec)
    return specs


def _check_init(spec: BufferSpec) -> None:
    """An initialiser's type, and a tensor's shape against the buffer (before allocation)."""
    init = spec.init
    if isinstance(init, Tensor):
        try:
            ok = torch.broadcast_shapes(tuple(init.shape), tuple(spec.meta.shape)) == tuple(
                spec.meta.shape
            )
        except RuntimeError:
            ok = False
        if not ok:
            raise MaterializeError(
                f"buffer {spec.qualname!r}: the tensor initialiser has shape "
                f"{tuple(init.shape)}, which does not broadcast to the buffer's shape "
                f"{tuple(spec.meta.shape)}"
            )
        if init.is_meta:
            raise MaterializeError(
                f"buffer {spec.qualname!r}: the tensor initialiser is on the meta device"
            )
    elif not callable(init) and not isinstance(init, (bool, int, float)):
        raise MaterializeError(
            f"buffer {spec.qualname!r}: initialiser must be a number, a tensor or a "
            f"callable, got {type(init).__name__} ({init!r})"
        )


def make_buffer(spec: BufferSpec, device: torch.device, dtype: torch.dtype | None) -> Tensor:
    """Allocate and fill one buffer on ``device``.

    Buffers keep the dtype they were built with (``dtype``, the parameters' dtype, is not
    applied: an eager build in a dtype keeps, e.g., rotary ``inv_freq`` in float32); a real
    buffer built by the module is moved, not copied, when it is on ``device`` already.

    Args:
        spec: the buffer and its initialiser (from :func:`plan_buffers`).
        device: where to allocate it.
        dtype: the parameters' dtype (unused for buffers; kept for the target's call).

    Returns:
        The new, filled tensor (not yet set on the model).

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> with initlab.meta_build(include_buffers=True):
        ...     bn = nn.BatchNorm1d(3)
        >>> make_buffer(plan_buffers(bn)[1], torch.device("cpu"), torch.float64)
        tensor([1., 1., 1.])
    """
    meta = spec.meta
    if spec.source == "built":
        return meta.to(device)
    t = torch.empty(meta.shape, dtype=meta.dtype, device=device)
    init = spec.init
    with torch.no_grad():
        if isinstance(init, Tensor):
            t.copy_(init)
        elif callable(init):
            try:
                out = init(t)
                if isinstance(out, Tensor) and out is not t:
                    t.copy_(out)
            except Exception as e:
                raise MaterializeError(
                    f"buffer {spec.qualname!r}: its initialiser {init!r} failed: {e}"
                ) from e
        elif isinstance(init, (bool, int, float)):
            t.fill_(init)
        else:
            raise MaterializeError(
                f"buffer {spec.qualname!r}: initialiser must be a number, a tensor or a "
                f"callable, got {type(init).__name__}"
            )
    return t
