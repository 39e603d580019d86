"""The Scheme base class and the registry of schemes by name.

A scheme is a small immutable object: a name, its parameters, and a fill. It never sees a
module: it receives a tensor, the parameter's :class:`~initlab.fans.Fans` (layer knowledge)
and a random source (randomness). Calling a scheme

1. validates its input (shape, fans, blocks) and raises before anything is written;
2. fills a contiguous buffer in row-major order (so a ``channels_last`` tensor receives the
   same values, element by element, as a contiguous one), block by block for packed
   parameters when the scheme uses fans;
3. copies into the tensor, keeping its dtype, device and identity.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor

from ..fans import Fans, fans_from_shape
from ..rng import RandomSource, as_source
from ..syntax import canonical_name

_REGISTRY: dict[str, type[Scheme]] = {}
_ALIASES: dict[str, str] = {}

S = TypeVar("S", bound="type[Scheme]")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """Base class of every initialisation scheme.

    Subclasses are frozen dataclasses whose fields are the scheme's parameters; they set the
    class attributes below and implement :meth:`fill`.
    """

    name: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: the scheme reads fans (variance scaling, orthogonal...): packed blocks are filled one by one
    uses_fans: ClassVar[bool] = False
    #: accepted tensor ranks; None means any rank
    ndims: ClassVar[tuple[int, ...] | None] = None
    #: the scheme is deterministic (no random source needed)
    deterministic: ClassVar[bool] = False
    #: each element's value depends only on its own index in one draw (uniform, normal,
    #: variance scaling...): a window of the tensor can be generated alone
    elementwise: ClassVar[bool] = False

    # -- the fill -------------------------------------------------------------------------
    def __call__(
        self,
        tensor: Tensor,
        fans: Fans | None = None,
        generator: torch.Generator | RandomSource | None = None,
    ) -> Tensor:
        """Initialise ``tensor`` in place and return it.

        Args:
            tensor: the tensor (or parameter) to fill.
            fans: its fans; by default torch's shape rule (``fans_from_shape``). Pass
                ``initlab.compute_fans(module, name)`` for layer-aware fans and blocks.
            generator: a ``torch.Generator``, an initlab random source, or None for torch's
                global generator.
        """
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{self.name}: expected a torch.Tensor, got {type(tensor).__name__}")
        fans = self.validate(tuple(tensor.shape), fans)
        rng = as_source(generator)
        if tensor.is_meta or tensor.numel() == 0:
            return tensor
        with torch.no_grad():
            target = (
                tensor
                if tensor.is_contiguous()
                else torch.empty_like(tensor, memory_format=torch.contiguous_format)
            )
            if fans is not None and fans.blocks and self.uses_fans:
                for blk in fans.blocks:
                    region = target.narrow(blk.dim, blk.start, blk.size)
                    self._fill_region(region, fans.for_block(blk), rng)
            else:
                self._fill_region(target, fans, rng)
            if target is not tensor:
                tensor.copy_(target)
        return tensor

    def validate(self, shape: tuple[int, ...], fans: Fans | None = None) -> Fans | None:
        """Check that the scheme can fill ``shape`` with ``fans``; return the fans it will use.

        Raises (ValueError/TypeError) without touching any tensor, so callers that initialise
        many tensors can validate all of them before writing any.
        """
        self.check_shape(shape)
        if fans is None and self.uses_fans and math.prod(shape) > 0:
            fans = fans_from_shape(shape)
        if fans is not None:
            fans.check_blocks(shape)
        return fans

    def fill_window(
        self,
        local: Tensor,
        global_shape: tuple[int, ...],
        index: tuple[slice, ...],
        fans: Fans | None,
        stream: Any,
    ) -> Tensor:
        """Fill ``local`` with what a full fill of ``global_shape`` would hold at ``index``.

        ``stream`` must be an element-addressable source (``initlab.streams.KeyedStream``).
        Element-wise schemes generate only the window's elements (packed blocks included);
        other schemes (orthogonal, structured, ...) generate the full tensor and cut the window.
        """
        index = _normalise_index(index, global_shape)
        if tuple(local.shape) != tuple(s.stop - s.start for s in index):
            raise ValueError(
                f"{self.name}: local shape {tuple(local.shape)} does not match window {index} "
                f"of shape {global_shape}"
            )
        fans = self.validate(tuple(global_shape), fans)
        if local.is_meta or local.numel() == 0:
            return local
        with torch.no_grad():
            if not self.elementwise:
                full = torch.empty(global_shape, dtype=local.dtype, device=local.device)
                self(full, fans, stream)
                local.copy_(full[index])
                return local
            target = (
                local
                if local.is_contiguous()
                else torch.empty(local.shape, dtype=local.dtype, device=local.device)
            )
            if fans is not None and fans.blocks and self.uses_fans:
                first = stream.draw
                for k, blk in enumerate(fans.blocks):
                    want = index[blk.dim]
                    lo, hi = max(want.start, blk.start), min(want.stop, blk.stop)
                    if lo >= hi:
                        continue
                    sub = target.narrow(blk.dim, lo - want.start, hi - lo)
                    block_shape = list(global_shape)
                    block_shape[blk.dim] = blk.size
                    block_index = list(index)
                    block_index[blk.dim] = slice(lo - blk.start, hi - blk.start)
                    stream.draw = first + k
                    self._window_region(
                        sub, tuple(block_shape), tuple(block_index), fans.for_block(blk), stream
                    )
                stream.draw = first + len(fans.blocks)
            else:
                self._window_region(target, tuple(global_shape), index, fans, stream)
            if target is not local:
                local.copy_(target)
        return local

    def _window_region(
        self, region: Tensor, shape: tuple[int, ...], index: tuple[slice, ...], fans: Fans | None,
        stream: Any,
    ) -> None:  # fmt: skip
        buf = (
            region
            if region.is_contiguous()
            else torch.empty(region.shape, dtype=region.dtype, device=region.device)
        )
        with stream.window(shape, index):
            self.fill(buf, fans, stream)
        if buf is not region:
            region.copy_(buf)

    def _fill_region(self, region: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        if region.is_contiguous():
            self.fill(region, fans, rng)
        else:  # a block along a dimension other than 0: fill a contiguous copy
            buf = torch.empty(region.shape, dtype=region.dtype, device=region.device)
            self.fill(buf, fans, rng)
            region.copy_(buf)

    def fill(self, t: Tensor, fans: Fans | None, rng: RandomSource) -> None:
        """Write values into the contiguous tensor ``t`` (one block). Implemented by subclasses."""
        raise NotImplementedError

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError, before anything is written, if the scheme cannot fill ``shape``."""
        if self.ndims is not None and len(shape) not in self.ndims:
            want = " or ".join(str(n) for n in self.ndims)
            raise ValueError(
                f"{self.name}: only tensors with {want} dimensions are supported, got shape {shape}"
            )

    def target_std(self, fans: Fans | None) -> float | None:
        """Standard deviation the scheme targets for a block with these fans (None: undefined)."""
        return None

    def check_source(self, kind: str) -> None:
        """Raise ValueError, before anything is written, if the scheme cannot draw from a random
        source of ``kind``: ``"keyed"`` (an element-addressable ``KeyedStream``) or ``"torch"``
        (a ``torch.Generator`` or torch's global generator). The default accepts both."""
        if kind not in ("keyed", "torch"):
            raise ValueError(f"{self.name}: unknown random source kind {kind!r}")

    # -- configuration --------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_config(self) -> dict[str, Any]:
        """A JSON-safe dict ``{"name": ..., **parameters}``; ``from_config`` inverts it."""
        return {"name": self.name, **{k: _jsonable(v) for k, v in self.params().items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scheme:
        config = dict(config)
        name = config.pop("name", cls.name)
        if cls is Scheme:
            return get_scheme(name, **config)
        if name != cls.name and resolve_name(name) != cls.name:
            raise ValueError(f"config names scheme {name!r}, not {cls.name!r}")
        return cls(**_from_json_fields(cls, config))

    def replace(self, **changes: Any) -> Scheme:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"


def _normalise_index(index: Any, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A full tuple of step-1 slices with explicit bounds (ints become length-1 slices)."""
    if not isinstance(index, tuple):
        index = (index,)
    if len(index) > len(shape):
        raise ValueError(f"window {index} has more entries than shape {shape} has dimensions")
    out = []
    for i, size in enumerate(shape):
        sl = index[i] if i < len(index) else slice(None)
        if isinstance(sl, int):
            j = sl + size if sl < 0 else sl
            if not 0 <= j < size:
                raise ValueError(f"window index {sl} is out of range for dimension {i} of {shape}")
            sl = slice(j, j + 1)
        if not isinstance(sl, slice):
            raise TypeError(f"window entries must be slices or ints, got {sl!r}")
        start, stop, step = sl.indices(size)
        if step != 1:
            raise ValueError(f"window slices must have step 1, got {sl}")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, Scheme):
        return v.to_config()
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # "inf" / "-inf" / "nan": JSON has no literal for them
    return v


def _from_json_fields(cls: type[Scheme], config: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise TypeError(
            f"scheme {cls.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"its parameters are: {', '.join(fields) or '(none)'}"
        )
    out = {}
    for k, v in config.items():
        if isinstance(v, list):
            v = tuple(v)
        if isinstance(v, str) and v in ("inf", "-inf", "nan"):
            v = float(v)
        if isinstance(v, dict) and "name" in v:
            v = Scheme.from_config(v)
        out[k] = v
    return out


# -- registry -----------------------------------------------------------------------------
def register_scheme(cls: S | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
    """Class decorator adding a Scheme subclass to the registry under ``cls.name`` (and aliases).

    Users register their own schemes the same way::

        @initlab.register_scheme
        @dataclasses.dataclass(frozen=True)
        class MyScheme(initlab.Scheme):
            name = "my_scheme"
            scale: float = 1.0
            def fill(self, t, fans, rng): ...
    """

    def deco(c: S) -> S:
        if not (isinstance(c, type) and issubclass(c, Scheme)) or not c.name:
            raise TypeError("register_scheme needs a Scheme subclass with a non-empty `name`")
        if not dataclasses.is_dataclass(c):
            raise TypeError(f"scheme {c.name!r} must be a (frozen) dataclass")
        if c.name in _REGISTRY and _REGISTRY[c.name] is not c:
            raise ValueError(f"a scheme named {c.name!r} is already registered")
        _REGISTRY[c.name] = c
        for a in aliases:
            _ALIASES[a] = c.name
        return c

    return deco(cls) if cls is not None else deco


def resolve_name(name: str) -> str:
    key = canonical_name(name)
    return _ALIASES.get(key, key)


def scheme_class(name: str) -> type[Scheme]:
    key = resolve_name(name)
    if key not in _REGISTRY:
        raise KeyError(
            f"unknown scheme {name!r}; known schemes: {', '.join(sorted(_REGISTRY))} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
    return _REGISTRY[key]


def get_scheme(name: str | Scheme | dict[str, Any], **params: Any) -> Scheme:
    """A scheme by name with parameters, e.g. ``get_scheme("kaiming_normal", mode="fan_out")``.

    Also accepts a config dict (``{"name": ..., ...}``) or a Scheme (returned, updated by params).
    """
    if isinstance(name, Scheme):
        return name.replace(**params) if params else name
    if isinstance(name, dict):
        cfg = {**name, **params}
        return scheme_class(cfg.pop("name")).from_config(cfg)
    cls = scheme_class(name)
    return cls(**_from_json_fields(cls, params))


def list_schemes() -> list[type[Scheme]]:
    """Registered scheme classes, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def aliases() -> dict[str, str]:
    return dict(_ALIASES)


def as_real(value: Any) -> float | None:
    """``value`` as a Python float when it is a real number: an int/float, a NumPy scalar or a
    0-d real tensor (as torch.nn.init accepts); bools count (as 0/1). None otherwise."""
    if isinstance(value, Tensor):
        if value.dim() != 0 or value.is_complex():
            return None
        return float(value.item())
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def _is_bool(value: Any) -> bool:
    if isinstance(value, Tensor):
        return value.dtype == torch.bool
    return isinstance(value, (bool, np.bool_))


def check_positive(scheme: str, what: str, value: Any, fix: str = "") -> float:
    """The positive finite number ``value`` as a float; ValueError otherwise."""
    v = as_real(value)
    if v is None or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{scheme}: {what} must be a positive finite number, got {value!r}{fix}")
    return v


def check_finite(scheme: str, what: str, value: Any) -> float:
    """The finite number ``value`` as a float; ValueError otherwise (also for a bool)."""
    v = None if _is_bool(value) else as_real(value)
    if v is None or not math.isfinite(v):
        raise ValueError(f"{scheme}: {what} must be a finite number, got {value!r}")
    return v


def check_nonneg(scheme: str, what: str, value: Any) -> float:
    """The finite number ``value`` >= 0 as a float; ValueError otherwise."""
    v = as_real(value)
    if v is None or not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{scheme}: {what} must be a finite number >= 0, got {value!r}")
    return v
