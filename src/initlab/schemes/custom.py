"""Custom values from any user function of (shape, generator).

Replaces the idiom ``layer.weight.data = torch.from_numpy(np.random.uniform(3, 5, size=shape))``,
which silently turns a float32 parameter into float64 and swaps the tensor under the
parameter. Here the function's result is checked for shape, then copied into the existing
tensor, which keeps its dtype, device and identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..fans import Fans
from ..refs import load_ref
from ..rng import RandomSource, TorchSource
from .base import Scheme, register_scheme

ValueFn = Callable[[tuple[int, ...], Any], Any]


def _qualified_name(fn: Callable[..., Any]) -> str | None:
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not mod or not qual or "<" in qual or mod == "__main__":
        return None
    return f"{mod}:{qual}"


def _import_fn(path: str) -> Callable[..., Any]:
    if ":" not in path:
        raise ValueError(f"custom: fn must be given as 'package.module:function', got {path!r}")
    fn = load_ref(path)  # RefError is a ValueError naming what failed
    if not callable(fn):
        raise ValueError(f"custom: {path!r} is not callable")
    return fn


@register_scheme
@dataclasses.dataclass(frozen=True)
class Custom(Scheme):
    """Values from ``fn(shape, generator)``, returning a NumPy array, a tensor or a scalar.

    ``generator`` is the ``torch.Generator`` of the call (or None); functions that use NumPy's
    own RNG may ignore it. ``fn`` may also be given as ``"package.module:function"``, which is
    what the config stores, so a custom scheme round-trips through JSON when its function is
    importable. Packed parameters receive one call per block when ``per_block`` is true.

    Example::

        get_scheme("custom", fn=lambda shape, g: np.random.uniform(3, 5, size=shape))
    """

    name = "custom"
    formula = "W = fn(shape, generator)"
    paper = "-"
    fn: ValueFn | str = dataclasses.field(default=None)  # type: ignore[assignment]
    per_block: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.fn, str):
            _import_fn(self.fn)  # validate now, not at fill time
        elif not callable(self.fn):
            raise ValueError(
                "custom: fn must be a callable (shape, generator) -> array or a "
                f"'package.module:function' string, got {self.fn!r}"
            )

    @property
    def uses_fans(self) -> bool:  # type: ignore[override]
        return self.per_block

    def function(self) -> ValueFn:
        return _import_fn(self.fn) if isinstance(self.fn, str) else self.fn

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        gen = rng.generator if isinstance(rng, TorchSource) else rng
        shape = tuple(t.shape)
        out = self.function()(shape, gen)
        if isinstance(out, np.ndarray | np.generic | int | float):
            out = torch.as_tensor(np.asarray(out))
        if not isinstance(out, Tensor):
            raise TypeError(
                f"custom: fn returned {type(out).__name__}; return a NumPy array, a tensor "
                "or a number"
            )
        if out.dim() != 0 and tuple(out.shape) != shape:
            raise ValueError(
                f"custom: fn returned shape {tuple(out.shape)} for a tensor of shape {shape}; "
                "it must return exactly the shape it is given (or a scalar)"
            )
        if out.is_complex() and not t.is_complex():
            raise TypeError("custom: fn returned complex values for a real tensor")
        t.copy_(out.to(device=t.device, dtype=t.dtype))

    def to_config(self) -> dict[str, Any]:
        fn = self.fn if isinstance(self.fn, str) else _qualified_name(self.fn)
        if fn is None:
            raise ValueError(
                "custom: this function (a lambda, a local or a __main__ function) cannot be "
                "named in a config; define it at module level in an importable module, or pass "
                "fn='package.module:function'"
            )
        return {"name": self.name, "fn": fn, "per_block": self.per_block}
