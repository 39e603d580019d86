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

from ..fans import Block, Fans, fans_from_shape
from ..rng import RandomSource, as_source
from ..syntax import canonical_name

_REGISTRY: dict[str, type[Scheme]] = {}
_ALIASES: dict[str, str] = {}

S = TypeVar("S", bound="type[Scheme]")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """Base class of every initialisation scheme.

    Subclasses are frozen dataclasses whose fields are the scheme's parameters; they set the
    class attributes below (``name``, ``formula``, ``paper``, ...) and implement :meth:`fill`.
    A scheme is data: ``to_config()`` gives ``{"name": ..., **parameters}`` and
    ``Scheme.from_config`` (or :func:`get_scheme`) rebuilds an equal scheme. Calling one,
    ``scheme(tensor, fans=None, generator=None)``, fills the tensor in place (see
    :meth:`__call__`).

    Example:
        >>> import torch
        >>> s = get_scheme("kaiming_normal", mode="fan_out", nonlinearity="relu")
        >>> s
        KaimingNormal(a=0.0, mode='fan_out', nonlinearity='relu')
        >>> Scheme.from_config(s.to_config()) == s
        True
        >>> w = s(torch.empty(128, 64), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item(), 3), round((2 / 128) ** 0.5, 3)
        (0.125, 0.125)
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

        Returns:
            ``tensor``, filled in place (a meta or empty tensor is returned untouched).

        Example:
            >>> from initlab.layers import compute_fans
            >>> mha = torch.nn.MultiheadAttention(8, 2)
            >>> fans = compute_fans(mha, "in_proj_weight")
            >>> g = torch.Generator().manual_seed(0)
            >>> _ = get_scheme("orthogonal")(mha.in_proj_weight, fans, g)
            >>> q = mha.in_proj_weight[:8].detach()  # each of q, k, v is orthogonal
            >>> torch.allclose(q @ q.T, torch.eye(8), atol=1e-5)
            True
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
                    part = block_window(blk, global_shape, index)
                    if part is None:
                        continue
                    start, length, block_shape, block_index = part
                    sub = target.narrow(blk.dim, start, length)
                    stream.draw = first + k
                    self._window_region(sub, block_shape, block_index, fans.for_block(blk), stream)
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
        """The scheme's parameters (its dataclass fields) as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_config(self) -> dict[str, Any]:
        """A JSON-safe dict ``{"name": ..., **parameters}``; ``from_config`` inverts it."""
        return {"name": self.name, **{k: _jsonable(v) for k, v in self.params().items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scheme:
        """The scheme a :meth:`to_config` dict describes (on Scheme: dispatched by ``name``)."""
        config = dict(config)
        name = config.pop("name", cls.name)
        if cls is Scheme:
            return get_scheme(name, **config)
        if name != cls.name and resolve_name(name) != cls.name:
            raise ValueError(f"config names scheme {name!r}, not {cls.name!r}")
        return cls(**_from_json_fields(cls, config))

    def replace(self, **changes: Any) -> Scheme:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"


def block_window(
    block: Block, shape: tuple[int, ...], index: tuple[slice, ...]
) -> tuple[int, int, tuple[int, ...], tuple[slice, ...]] | None:
    """Where ``block`` of a ``shape`` tensor meets the window ``index`` (normalised slices):
    ``(start, length)`` of the overlap along ``block.dim`` in window coordinates, the block's
    own shape, and the overlap as a window of the block; None when they do not meet.

    Args:
        block: a block of a packed parameter (dim, start, size).
        shape: the whole parameter's shape.
        index: the window, one normalised slice per dim.

    Returns:
        ``(offset, length, block_shape, block_index)`` or None.

    Example:
        >>> from initlab.fans import Block
        >>> block_window(Block("f", 3, 6), (12, 4), (slice(2, 8), slice(0, 4)))
        (1, 3, (3, 4), (slice(0, 3, None), slice(0, 4, None)))
    """
    want = index[block.dim]
    lo, hi = max(want.start, block.start), min(want.stop, block.stop)
    if lo >= hi:
        return None
    block_shape, block_index = list(shape), list(index)
    block_shape[block.dim] = block.size
    block_index[block.dim] = slice(lo - block.start, hi - block.start)
    return lo - want.start, hi - lo, tuple(block_shape), tuple(block_index)


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
        elif isinstance(v, str) and k in fields and "float" in str(fields[k].type) and _formula(v):
            # e.g. std="0.02 / sqrt(2 * n_layer)": only a policy planned on a model can read it
            raise ValueError(
                f"{cls.name}: {k}={v!r} is not a number; an expression of a model's quantities "
                f"is evaluated when a policy is planned against a model: put the scheme in a "
                f"policy rule (e.g. initlab.Rule({{'name': {cls.name!r}, {k!r}: {v!r}}})) and "
                f"call initlab.plan/initialize/materialize(model, policy)"
            )
        if isinstance(v, dict) and "name" in v:
            v = Scheme.from_config(v)
        out[k] = v
    return out


def _formula(text: str) -> bool:
    """Whether a string given for a number is a formula (not a number written as text)."""
    try:
        float(text)
    except ValueError:
        return True
    return False


# -- registry -----------------------------------------------------------------------------
def register_scheme(cls: S | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
    """Class decorator adding a Scheme subclass to the registry under ``cls.name`` (and aliases).

    Args:
        cls: the Scheme subclass (a frozen dataclass with a non-empty ``name``); omitted when the
            decorator is called with ``aliases``.
        aliases: other names :func:`get_scheme` accepts for it.

    Returns:
        ``cls`` (or a decorator, when called with keywords only).

    Example:
        >>> import dataclasses, torch
        >>> @register_scheme(aliases=("halves",))
        ... @dataclasses.dataclass(frozen=True)
        ... class Half(Scheme):
        ...     name = "doc_half"
        ...     formula = "W = value"
        ...     value: float = 0.5
        ...     def fill(self, t, fans, rng):
        ...         t.fill_(self.value)
        >>> get_scheme("halves")(torch.empty(3))
        tensor([0.5000, 0.5000, 0.5000])
        >>> del _REGISTRY["doc_half"], _ALIASES["halves"]  # leave the catalogue as it was
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
    """The registered name: trimmed, lower-cased, ``-`` read as ``_``, aliases resolved.

    Args:
        name: a scheme name or alias.

    Returns:
        The canonical name (not checked against the registry).

    Example:
        >>> resolve_name(" He-Normal ")
        'kaiming_normal'
    """
    key = canonical_name(name)
    return _ALIASES.get(key, key)


def scheme_class(name: str) -> type[Scheme]:
    """The registered Scheme subclass for ``name`` (an alias, any case, ``-`` for ``_``).

    Args:
        name: a scheme name or alias.

    Returns:
        The class; KeyError naming the known schemes when there is none.

    Example:
        >>> scheme_class("He-Normal").__name__
        'KaimingNormal'
    """
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

    Args:
        name: a registered name or alias, a config dict, or a Scheme.
        **params: the scheme's parameters (unknown ones raise TypeError naming the known ones).

    Returns:
        The scheme (immutable and hashable).

    Example:
        >>> get_scheme("glorot_uniform", gain=2.0)
        XavierUniform(gain=2.0)
        >>> get_scheme({"name": "normal", "std": 0.02})
        Normal(mean=0.0, std=0.02)
        >>> get_scheme("nope")
        Traceback (most recent call last):
        ...
        KeyError: "unknown scheme 'nope'; known schemes: ..."
    """
    if isinstance(name, Scheme):
        return name.replace(**params) if params else name
    if isinstance(name, dict):
        cfg = {**name, **params}
        return scheme_class(cfg.pop("name")).from_config(cfg)
    cls = scheme_class(name)
    return cls(**_from_json_fields(cls, params))


def list_schemes() -> list[type[Scheme]]:
    """Registered scheme classes, sorted by name.

    Returns:
        A list of Scheme subclasses.

    Example:
        >>> [c.name for c in list_schemes()][:3]
        ['constant', 'custom', 'delta_orthogonal']
    """
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def aliases() -> dict[str, str]:
    """Every alias and the scheme name it stands for.

    Returns:
        A new dict ``{alias: name}``.

    Example:
        >>> aliases()["he_normal"], aliases()["glorot_uniform"]
        ('kaiming_normal', 'xavier_uniform')
    """
    return dict(_ALIASES)


def as_real(value: Any) -> float | None:
    """``value`` as a Python float when it is a real number: an int/float, a NumPy scalar or a
    0-d real tensor (as torch.nn.init accepts); bools count (as 0/1). None otherwise.

    Args:
        value: anything.

    Returns:
        The float, or None.

    Example:
        >>> as_real(torch.tensor(2)), as_real(np.float32(0.5)), as_real("x")
        (2.0, 0.5, None)
    """
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
    """The positive finite number ``value`` as a float; ValueError otherwise.

    Args:
        scheme: the scheme's name, for the message.
        what: the parameter's name, for the message.
        value: the value to check.
        fix: text appended to the message (how to fix it).

    Returns:
        ``value`` as a float.

    Example:
        >>> check_positive("trunc_normal", "std", 0)
        Traceback (most recent call last):
        ...
        ValueError: trunc_normal: std must be a positive finite number, got 0
    """
    v = as_real(value)
    if v is None or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{scheme}: {what} must be a positive finite number, got {value!r}{fix}")
    return v


def check_finite(scheme: str, what: str, value: Any) -> float:
    """The finite number ``value`` as a float; ValueError otherwise (also for a bool).

    Args:
        scheme: the scheme's name, for the message.
        what: the parameter's name, for the message.
        value: the value to check.

    Returns:
        ``value`` as a float.

    Example:
        >>> check_finite("orthogonal", "gain", torch.tensor(-2))
        -2.0
    """
    v = None if _is_bool(value) else as_real(value)
    if v is None or not math.isfinite(v):
        raise ValueError(f"{scheme}: {what} must be a finite number, got {value!r}")
    return v


def check_nonneg(scheme: str, what: str, value: Any) -> float:
    """The finite number ``value`` >= 0 as a float; ValueError otherwise.

    Args:
        scheme: the scheme's name, for the message.
        what: the parameter's name, for the message.
        value: the value to check.

    Returns:
        ``value`` as a float.

    Example:
        >>> check_nonneg("normal", "std", -1)
        Traceback (most recent call last):
        ...
        ValueError: normal: std must be a finite number >= 0, got -1
    """
    v = as_real(value)
    if v is None or not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{scheme}: {what} must be a finite number >= 0, got {value!r}")
    return v
