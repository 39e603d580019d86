"""Custom values from any user function of (shape, generator).

Replaces the idiom ``layer.weight.data = torch.from_numpy(np.random.uniform(3, 5, size=shape))``,
which silently turns a float32 parameter into float64 and swaps the tensor under the
parameter. Here the function's result is checked (shape, dtype, finite), then copied into the
existing tensor, which keeps its dtype, device and identity.

The dtype rule: floating results (float16/32/64, bfloat16, NumPy or torch) are cast to the
tensor's dtype (round to nearest); a Python number is a float; integer, bool and complex
results are refused (say ``.astype(float)`` when integers are meant). NaN or inf is refused.
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
    """Values from ``fn(shape, generator)``: W = fn(shape, generator), cast to the tensor's dtype.

    ``fn`` returns a NumPy array or a tensor of exactly ``shape``, or a scalar for every element.
    ``generator`` is the ``torch.Generator`` of the call (or None); functions that use NumPy's
    own RNG may ignore it. ``fn`` may also be given as ``"package.module:function"``, which is
    what the config stores, so a custom scheme round-trips through JSON when its function is
    importable. Packed parameters receive one call per block when ``per_block`` is true.

    Args:
        fn: a callable ``(shape, generator) -> values``, or its ``"package.module:function"``.
        per_block: call ``fn`` once per packed block (with the block's shape).

    Example:
        >>> s = Custom(lambda shape, g: np.full(shape, 0.25))
        >>> s(torch.empty(2, 2))
        tensor([[0.2500, 0.2500],
                [0.2500, 0.2500]])
        >>> Custom("math:sqrt").to_config()
        {'name': 'custom', 'fn': 'math:sqrt', 'per_block': False}
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
        """True when ``per_block``: packed parameters are then filled block by block."""
        return self.per_block

    def function(self) -> ValueFn:
        """The callable (imported when ``fn`` is a ``"package.module:function"`` string)."""
        return _import_fn(self.fn) if isinstance(self.fn, str) else self.fn

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        gen = rng.generator if isinstance(rng, TorchSource) else rng
        shape = tuple(t.shape)
        out = self.function()(shape, gen)
        if isinstance(out, int | float) and not isinstance(out, bool):
            out = torch.tensor(float(out), dtype=torch.float64)
        elif isinstance(out, np.ndarray | np.generic | bool):
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
        t.copy_(checked_values(out, t))

    def to_config(self) -> dict[str, Any]:
        fn = self.fn if isinstance(self.fn, str) else _qualified_name(self.fn)
        if fn is None:
            raise ValueError(
                "custom: this function (a lambda, a local or a __main__ function) cannot be "
                "named in a config; define it at module level in an importable module, or pass "
                "fn='package.module:function'"
            )
        return {"name": self.name, "fn": fn, "per_block": self.per_block}


def checked_values(out: Tensor, t: Tensor) -> Tensor:
    """``out`` cast to ``t``'s dtype and device, after checking it is real floating-point and
    finite (the dtype rule of the module docstring).

    Args:
        out: what the user's function returned, as a tensor.
        t: the tensor being filled.

    Returns:
        ``out`` cast to ``t``'s dtype and device.

    Example:
        >>> import torch
        >>> checked_values(torch.tensor([0.5], dtype=torch.float64), torch.empty(1)).dtype
        torch.float32
        >>> checked_values(torch.tensor([float("nan")]), torch.empty(1))
        Traceback (most recent call last):
        ...
        ValueError: custom: fn returned 1 NaN or inf value(s); it must return finite numbers
    """
    if not out.is_floating_point():
        kind = "complex" if out.is_complex() else str(out.dtype).removeprefix("torch.")
        raise TypeError(
            f"custom: fn returned {kind} values; return floating-point values (they are cast "
            f"to the parameter's dtype {str(t.dtype).removeprefix('torch.')}), e.g. "
            "array.astype(float)"
        )
    bad = int((~torch.isfinite(out)).sum())
    if bad:
        raise ValueError(
            f"custom: fn returned {bad} NaN or inf value(s); it must return finite numbers"
        )
    cast = out.to(device=t.device, dtype=t.dtype)
    bad = int((~torch.isfinite(cast)).sum()) if t.is_floating_point() else 0
    if bad:
        raise ValueError(
            f"custom: {bad} value(s) of fn overflow the parameter's dtype "
            f"{str(t.dtype).removeprefix('torch.')} (inf after the cast)"
        )
    return cast
