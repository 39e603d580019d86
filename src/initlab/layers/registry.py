"""The layer registry: layer type -> :class:`~initlab.layers.spec.LayerSpec`.

A key is one of:

* a class (an ``nn.Module`` subclass), matched through the module's MRO, most specific first;
* a dotted class name (``"transformers.pytorch_utils.Conv1D"``), resolved at lookup only if its
  module is already imported (the registry never imports it), then matched as a class; at one
  level of the MRO a class key wins over a name naming the same class;
* a predicate ``callable(module) -> bool`` (duck typing), tried, newest first, only when no
  class of the MRO is registered.

Registering a key twice raises unless ``replace=True``, which swaps the spec.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..fans import Fans
from .defaults import TorchInit
from .spec import BufferValue, LayerSpec

__all__ = [
    "LayerKey",
    "child_torch_init",
    "claims_child",
    "find_layer",
    "keep_structure_",
    "known_buffer",
    "padding_row",
    "register_layer",
    "unregister_layer",
]

LayerKey = type | str | Callable[[nn.Module], bool]

_CLASSES: dict[type, LayerSpec] = {}
_NAMES: dict[str, LayerSpec] = {}
_PREDICATES: dict[Callable[[nn.Module], bool], LayerSpec] = {}
#: bumped by every registration change (invalidates the resolved names)
_version = 0


def _key_text(key: LayerKey) -> str:
    if isinstance(key, type):
        return f"{key.__module__}.{key.__qualname__}"
    if isinstance(key, str):
        return repr(key)
    return f"predicate {getattr(key, '__qualname__', repr(key))}"


def _table(key: LayerKey) -> dict:
    """The table a key belongs in; raises for a key of the wrong kind."""
    if isinstance(key, type):
        if not issubclass(key, nn.Module):
            raise TypeError(
                f"register_layer: {key.__qualname__} is not an nn.Module subclass; register a "
                "layer class, a dotted class name 'pkg.mod.Class' or a predicate(module) -> bool"
            )
        return _CLASSES
    if isinstance(key, str):
        parts = key.split(".")
        if len(parts) < 2 or not all(p.isidentifier() for p in parts):
            raise ValueError(
                f"register_layer: {key!r} is not a dotted class name; write the module and the "
                "class, e.g. 'transformers.pytorch_utils.Conv1D'"
            )
        return _NAMES
    if callable(key):
        try:
            takes_none = len(inspect.signature(key).parameters) < 1
        except (TypeError, ValueError):  # some builtins have no signature: trust them
            takes_none = False
        if takes_none:
            raise TypeError(
                f"register_layer: predicate {key!r} must take the module as its argument"
            )
        return _PREDICATES
    raise TypeError(
        f"register_layer: key {key!r} is not a layer class, a dotted class name 'pkg.mod.Class' "
        "or a predicate(module) -> bool"
    )


def register_layer(key: LayerKey, spec: LayerSpec, *, replace: bool = False) -> None:
    """Teach initlab a layer type: its parameters' layouts, blocks, roles, buffers, defaults.

    Args:
        key: a layer class (matched through the MRO, most specific first), a dotted class
            name resolved only once its module is imported, or a predicate ``(module) -> bool``.
        spec: the :class:`~initlab.layers.spec.LayerSpec`.
        replace: allow replacing the spec of an already registered key (else ValueError).

    Raises:
        TypeError: ``key`` or ``spec`` is of the wrong kind.
        ValueError: a malformed class name, or ``key`` is registered and ``replace`` is False.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import initlab
        >>> from initlab.layers import LayerSpec, ParamSpec, unregister_layer
        >>> class Dense(nn.Module):  # kernel [in, out], as in JAX
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.kernel = nn.Parameter(torch.empty(3, 5))
        >>> kernel = ParamSpec("weight", initlab.Layout(in_axes=(0,), out_axes=(1,)))
        >>> initlab.register_layer(Dense, LayerSpec("dense", {"kernel": kernel}))
        >>> f = initlab.compute_fans(Dense(), "kernel")
        >>> f.fan_in, f.fan_out, f.rule, f.role
        (3, 5, 'dense', 'weight')
        >>> unregister_layer(Dense)
    """
    table = _table(key)
    if not isinstance(spec, LayerSpec):
        raise TypeError(
            f"register_layer: spec for {_key_text(key)} must be an initlab.layers.LayerSpec, "
            f"got {type(spec).__name__}"
        )
    if key in table and not replace:
        raise ValueError(
            f"register_layer: {_key_text(key)} is already registered (rule "
            f"{table[key].rule!r}); pass replace=True to replace its spec"
        )
    global _version
    table.pop(key, None)  # a replaced predicate moves to the front (newest first)
    table[key] = spec
    _version += 1


def unregister_layer(key: LayerKey) -> None:
    """Forget ``key`` (KeyError naming it if it is not registered).

    Args:
        key: what :func:`register_layer` was given (a class, a dotted class name or a
            predicate).

    Example:
        >>> from torch import nn
        >>> unregister_layer(nn.Identity)
        Traceback (most recent call last):
        ...
        KeyError: 'unregister_layer: torch.nn.modules.linear.Identity is not registered'
    """
    table = _table(key)
    if key not in table:
        raise KeyError(f"unregister_layer: {_key_text(key)} is not registered")
    global _version
    del table[key]
    _version += 1


def _resolve(name: str) -> type | None:
    """The class a dotted name names, if its module is already imported (never imports).

    Submodules are looked up in the module's ``__dict__``, not with ``getattr``: a lazy package
    (``transformers``) would import a submodule on ``getattr``, and a class whose module is not
    imported has no instance to match anyway.
    """
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod = sys.modules.get(".".join(parts[:i]))
        if mod is None:
            continue
        obj: object = mod
        for attr in parts[i:]:
            if isinstance(obj, types.ModuleType):
                obj = vars(obj).get(attr)
            else:
                obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj if isinstance(obj, type) else None
    return None


#: (number of imported modules, registry version), {class: spec} of the names that resolve,
#: and the names whose module is imported but lacks the class (yet)
_named_cache: tuple[tuple[int, int], dict[type, LayerSpec], list[str]] = ((-1, -1), {}, [])


def _named_classes() -> dict[type, LayerSpec]:
    """The classes of the names registered, among modules imported. A plan looks up every
    parameter's layer, so they are kept until a module is imported, the registry changes, or
    a class appears in a module already imported (a class defined after registering it)."""
    global _named_cache
    key = (len(sys.modules), _version)
    old_key, named, pending = _named_cache
    if old_key != key or any(_resolve(name) is not None for name in pending):
        named, pending = {}, []
        for name, spec in _NAMES.items():
            cls = _resolve(name)
            if cls is not None:
                named.setdefault(cls, spec)
            elif name.rpartition(".")[0] in sys.modules:
                pending.append(name)
        _named_cache = (key, named, pending)
    return named


def find_layer(module: nn.Module) -> LayerSpec | None:
    """The spec registered for ``module``'s type (see the module docstring), or None.

    Args:
        module: the layer to look up (its class's MRO first, then the predicates, newest first).

    Returns:
        The :class:`~initlab.layers.spec.LayerSpec`, or None when no entry matches.

    Example:
        >>> from torch import nn
        >>> find_layer(nn.SyncBatchNorm(4)).buffers["running_var"]  # through _NormBase
        1
    """
    named = _named_classes()
    for cls in type(module).__mro__:
        spec = _CLASSES.get(cls) or named.get(cls)
        if spec is not None:
            return spec
    for predicate in reversed(_PREDICATES):
        if predicate(module):
            return _PREDICATES[predicate]
    return None


def known_buffer(module: nn.Module, name: str) -> tuple[BufferValue, str] | None:
    """The value ``module``'s layer spec gives buffer ``name`` on materialisation, and where it
    comes from, or None.

    Args:
        module: the buffer's owning layer.
        name: the buffer's name in ``module`` (``"running_var"``).

    Returns:
        ``(value, source)``: the number, tensor or callable of the layer spec, and
        ``"Layer.buffer"``; None when the layer spec does not give it.

    Example:
        >>> from torch import nn
        >>> known_buffer(nn.BatchNorm2d(8), "running_var")
        (1, 'BatchNorm2d.running_var')
    """
    spec = find_layer(module)
    if spec is None or name not in spec.buffers:
        return None
    return spec.buffers[name], f"{type(module).__name__}.{name}"


def padding_row(
    param_name: str, rows: int, module: nn.Module | None = None, fans: Fans | None = None
) -> int | None:
    """The row (``0 <= row < rows``) of a parameter its layer keeps at zero, or None.

    From ``module``'s spec when the module is given, else from ``fans`` (whose attrs record an
    Embedding's ``padding_idx``).

    Args:
        param_name: the parameter's name in its module (``"weight"``).
        rows: the parameter's number of rows (a negative ``padding_idx`` counts from it).
        module: the owning module, or None to read the fans' attrs.
        fans: the parameter's fans (used when ``module`` is None).

    Returns:
        The padding row, or None when the layer keeps none.

    Example:
        >>> from torch import nn
        >>> padding_row("weight", 20, nn.Embedding(20, 6, padding_idx=-1))
        19
    """
    if rows <= 0:
        return None
    if module is not None:
        spec = find_layer(module)
        found = spec.param(param_name) if spec is not None else None
        if found is None or found[0].padding_attr is None:
            return None
        pad = getattr(module, found[0].padding_attr, None)
    else:
        if fans is None or fans.param not in (None, param_name):
            return None
        pad = fans.attr("padding_idx")
    return None if pad is None else int(pad) % rows


def keep_structure_(
    tensor: Tensor,
    param_name: str,
    module: nn.Module | None = None,
    fans: Fans | None = None,
    *,
    rows: int | None = None,
    start: int = 0,
) -> None:
    """Re-impose in place what the layer relies on after a fill: its padding row (see
    :func:`padding_row`) stays zero.

    Args:
        tensor: the filled tensor: the whole parameter, or rows ``[start, start + len)`` of it.
        param_name: the parameter's name in its module (``"weight"``).
        module: the owning module, or None to read the fans' attrs.
        fans: the parameter's fans (used when ``module`` is None).
        rows: the whole parameter's number of rows (default: ``tensor``'s).
        start: the first row of the whole parameter that ``tensor`` holds.

    Example:
        >>> import torch
        >>> t = torch.ones(4, 2)
        >>> keep_structure_(t, "weight", nn.Embedding(4, 2, padding_idx=1))
        >>> t[:, 0].tolist()
        [1.0, 0.0, 1.0, 1.0]
        >>> w = torch.ones(2, 2)  # rows 2..3 of a 4-row table whose padding row is 3
        >>> keep_structure_(w, "weight", nn.Embedding(4, 2, padding_idx=3), rows=4, start=2)
        >>> w[:, 0].tolist()
        [1.0, 0.0]
    """
    if rows is None:
        rows = tensor.shape[0] if tensor.dim() else 0
    row = padding_row(param_name, rows, module, fans)
    if row is not None and start <= row < start + (tensor.shape[0] if tensor.dim() else 0):
        with torch.no_grad():
            tensor[row - start].zero_()


def claims_child(parent: nn.Module | None, child: str) -> bool:
    """Whether ``parent``'s layer spec changes the init of its child ``child``'s parameters
    (MultiheadAttention's ``out_proj``), so that their fans are computed from the parent.

    Args:
        parent: the child's parent module, or None (a top-level module: False).
        child: the child's attribute name in ``parent``.

    Example:
        >>> from torch import nn
        >>> claims_child(nn.MultiheadAttention(8, 2), "out_proj")
        True
    """
    spec = find_layer(parent) if parent is not None else None
    return spec is not None and child in spec.children


def child_torch_init(parent: nn.Module, child: str, param_name: str) -> TorchInit | None:
    """The default ``parent`` imposes on ``child.param_name`` after the child's own, or None.

    Args:
        parent: the parent module (e.g. a MultiheadAttention).
        child: the child's attribute name in ``parent`` (``"out_proj"``).
        param_name: the parameter's name in the child (``"bias"``).

    Returns:
        The :class:`~initlab.layers.defaults.TorchInit` the parent applies, or None.

    Example:
        >>> from torch import nn
        >>> str(child_torch_init(nn.MultiheadAttention(8, 2), "out_proj", "bias"))
        'zeros'
    """
    spec = find_layer(parent)
    return None if spec is None else spec.children.get(child, {}).get(param_name)
