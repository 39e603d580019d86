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
    """The model cannot be materialised as asked; nothing was allocated or written."""


@dataclasses.dataclass
class BufferSpec:
    """One buffer (tied buffers once): its names, meta tensor and initialiser."""

    qualname: str
    owners: list[tuple[nn.Module, str]]
    aliases: list[str]  # the other qualified names of a tied buffer
    meta: Tensor
    init: BufferInit
    source: str  # "user", "built" (a real buffer, kept) or the known default that set it
    persistent: bool


def owners(model: nn.Module, attr: str) -> dict[int, list[tuple[nn.Module, str, str]]]:
    """id(tensor) -> every (module, attribute, qualified name) holding it, in model order."""
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
    rest, naming all of them."""
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
    """Allocate and fill one buffer on ``device``. Buffers keep the dtype they were built with
    (``dtype``, the parameters' dtype, is not applied: an eager build in a dtype keeps, e.g.,
    rotary ``inv_freq`` in float32); a real buffer built by the module is moved, not copied,
    when it is on ``device`` already."""
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
