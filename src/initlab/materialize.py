"""Materialise a model built on the meta device: allocate each parameter once and fill it.

::

    with initlab.meta_build():         # or torch.device("meta")
        model = GPT(config)            # no memory, no default init
    initlab.materialize(model, "gpt2:n_layers=12", seed=0)

is bit-identical to ``initlab.initialize(GPT(config), "gpt2:n_layers=12", seed=0)``, without
building the model on CPU first and without running any layer's default init. It is the same
plan and the same fill (:func:`initlab.apply.fill_row`) as ``initialize``; only the target
differs: a fresh tensor, allocated on ``device`` in ``dtype`` right before it is filled,
then swapped in. Parameters are done one at a time, so peak memory stays close to the model's
own size (plus a few chunks of scratch per stream thread, ~2 MiB each).

* **Ties** stay ties: the new Parameter object is set on every module that held the old one.
* **Buffers** become real: BatchNorm/InstanceNorm ``running_mean`` 0, ``running_var`` 1 and
  ``num_batches_tracked`` 0, as the layers define them. Any other buffer (a user's positional
  table, a loss weight, spectral-norm vectors...) raises :class:`MaterializeError` naming it,
  unless ``buffers={"name or glob": initialiser}`` supplies it; an initialiser is a number
  (fill), a tensor (copied) or a callable receiving the empty buffer (fill it in place, or
  return a tensor to copy).
* **Unmatched or excluded parameters** raise: on the meta device there are no values to keep,
  so "leave it as it is" has no meaning. Add a rule, a default
  (``Policy(..., unmatched="default", default="torch_default")``) or materialise them first.
* **Building on meta.** ``torch.device("meta")`` still runs every layer's ``reset_parameters``
  on meta tensors: no memory, but not free (torch routes ``normal_`` on meta through its
  reference implementations, whose first call imports torch._dynamo: 1.8 s here).
  :func:`meta_build` is ``torch.device("meta")`` that also skips those fills.
* **DTensor parameters** (FSDP2, tensor parallel) get a local shard of this rank's shape and
  are filled shard-locally (:mod:`initlab.distributed`); the Parameter object is kept
  (``torch.utils.swap_tensors``), as FSDP2 needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .apply import _check_seed, _measured_stream, achieved_std, fill_row
from .distributed import check_sharded, empty_sharded, fill_sharded, is_dtensor
from .distributed import note_full_generation as _note
from .layers import known_buffer
from .plan import PolicyLike, plan, uncovered_blocks
from .report import InitReport, ParamRow
from .streams import KeyedStream

__all__ = ["BufferInit", "MaterializeError", "materialize", "meta_build"]

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
    source: str  # "user" or the known default that set it
    persistent: bool


#: random in-place fills; on a meta tensor they write nothing, so meta_build skips them
_RANDOM_FILLS = frozenset(
    getattr(torch.Tensor, n)
    for n in ("normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_",
              "log_normal_", "geometric_")
)  # fmt: skip


def _is_init_fill(func: Any) -> bool:
    """A random in-place fill, or a public in-place function of torch.nn.init (``uniform_``,
    ``kaiming_uniform_``...: they return the tensor they fill)."""
    if func in _RANDOM_FILLS:
        return True
    name = getattr(func, "__name__", "")
    return (
        getattr(func, "__module__", None) == "torch.nn.init"
        and name.endswith("_")
        and not name.startswith("_")
    )


class _SkipMetaInit(TorchFunctionMode):
    """Skips torch.nn.init fills and random fills whose target is a meta tensor."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
        if isinstance(target, Tensor) and target.is_meta and _is_init_fill(func):
            return target
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_build() -> Iterator[None]:
    """Build a model on the meta device without running any default initialisation::

        with initlab.meta_build():
            model = GPT(config)
        initlab.materialize(model, policy, seed=0)

    Inside, tensors are created on ``meta`` (as under ``torch.device("meta")``), and
    ``torch.nn.init`` functions and random in-place fills (``normal_``, ``uniform_``...) of
    meta tensors return at once: on meta they compute nothing, yet torch's first ``normal_``
    on meta imports torch._dynamo (1.8 s of a 2-core machine's time). Tensors created on a
    real device (``device="cpu"``) are initialised as usual. Like ``torch.device``, it acts
    on the current thread only.
    """
    with torch.device("meta"), _SkipMetaInit():
        yield


def _known_buffer(module: nn.Module, name: str) -> tuple[BufferInit, str] | None:
    """The value torch's own layers define for their buffers, or None (the layer registry)."""
    return known_buffer(module, name)


def check_on_meta(model: nn.Module, what: str = "materialize") -> None:
    """Raise :class:`MaterializeError` unless every parameter and buffer is on meta."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    real = [n for n, t in tensors if not t.is_meta]
    if real:
        shown = ", ".join(real[:8]) + (f" and {len(real) - 8} more" if len(real) > 8 else "")
        raise MaterializeError(
            f"{what} expects a model built on the meta device (`with initlab.meta_build(): "
            f"model = ...`), but {len(real)} tensor(s) already have storage: {shown}. "
            "For a model that has storage use initlab.initialize(model, policy, seed)"
        )


def check_rows(report: InitReport, what: str = "materialize") -> None:
    """Every parameter must be planned: on meta there are no values to leave in place."""
    partial = {r.qualname: uncovered_blocks(r) for r in report.rows if r.status == "partial"}
    if partial:
        shown = "; ".join(f"{n}: block(s) {', '.join(b)}" for n, b in partial.items())
        raise MaterializeError(
            f"{what}: {len(partial)} packed parameter(s) have rules for only some of their "
            f"blocks, and on the meta device the other blocks have no values to keep: {shown}. "
            "Add a whole-parameter rule after the block rules, or a default"
        )
    left = [r.qualname for r in report.rows if r.status != "planned"]
    if left:
        raise MaterializeError(
            f"{what}: {len(left)} parameter(s) matched no rule or were excluded, and on the "
            f"meta device they have no values to keep: {', '.join(left)}. Add rules for them "
            "or a default (Policy(..., unmatched='default', default='torch_default'))"
        )


def _owners(model: nn.Module, attr: str) -> dict[int, list[tuple[nn.Module, str, str]]]:
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
    for entries in _owners(model, "_buffers").values():
        names = [full for _, _, full in entries]
        module, attr, qualname = entries[0]
        init = source = None
        for pattern, value in user.items():
            if any(n == pattern or fnmatch.fnmatchcase(n, pattern) for n in names):
                init, source = value, "user"
                used.add(pattern)
                break
        if source is None:
            known = _known_buffer(module, attr)
            if known is None:
                unknown.append(qualname)
                continue
            init, source = known
        persistent = attr not in module._non_persistent_buffers_set
        specs.append(BufferSpec(qualname, [(m, a) for m, a, _ in entries], names[1:],
                                module._buffers[attr], init, source, persistent))  # fmt: skip
    if unknown:
        raise MaterializeError(
            f"initlab does not know the value of buffer(s) {', '.join(unknown)}: supply them, "
            "e.g. buffers={" + repr(unknown[0]) + ": fn} where fn fills the empty tensor it "
            "receives (or returns a tensor), or a number or tensor to copy"
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
    """Allocate and fill one buffer (a floating buffer takes ``dtype`` as ``.to(dtype)`` would)."""
    meta = spec.meta
    bdtype = dtype if dtype is not None and meta.is_floating_point() else meta.dtype
    t = torch.empty(meta.shape, dtype=bdtype, device=device)
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


def _check_dtype(dtype: torch.dtype | None) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise MaterializeError(f"dtype must be a floating torch.dtype or None, got {dtype!r}")


def materialize(
    model: nn.Module,
    policy: PolicyLike,
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    buffers: Mapping[str, BufferInit] | None = None,
    strict: bool = False,
    exclude: Iterable[str] = (),
    measure: bool = True,
) -> InitReport:
    """Allocate and initialise every parameter and buffer of a model built on the meta device.

    Bit-identical to building the model eagerly and calling ``initialize(model, policy,
    seed)``; see the module docstring for ties, buffers and sharded parameters. Everything is
    checked (meta device, rules, buffers, sharded layouts) before anything is allocated.

    Args:
        model: a model whose parameters and buffers are all on the meta device.
        policy: a Policy, preset name, policy file path or dict (as for ``initialize``).
        seed: the seed of the per-parameter streams.
        device: where tensors are allocated (DTensor shards: the device mesh's device type).
        dtype: the floating dtype of parameters and floating buffers (None: as built).
        buffers: initialisers of buffers initlab does not know, by name or glob.
        strict: raise :class:`~initlab.plan.UnmatchedParametersError` for unmatched
            parameters (without it they raise :class:`MaterializeError` all the same).
        exclude: parameter-name patterns to leave out (which, on meta, is an error).
        measure: record each parameter's achieved std in the report (summed while the
            values are written where the fill allows, else one more pass).

    Returns:
        The report, with ``device``/``dtype`` of each row set to what was allocated.
    """
    _check_seed(seed)
    _check_dtype(dtype)
    dev = torch.device(device)
    check_on_meta(model)
    report = plan(model, policy, seed, strict=strict, exclude=exclude)
    check_rows(report)
    specs = plan_buffers(model, buffers)
    params = dict(model.named_parameters())
    sharded = {r.qualname for r in report.rows if is_dtensor(params[r.qualname])}
    for name in sharded:
        check_sharded(name, params[name])
        mesh_type = params[name].device_mesh.device_type
        if dev.type != mesh_type:
            raise MaterializeError(
                f"parameter {name!r} is a DTensor on a {mesh_type!r} device mesh: materialise "
                f"with device={mesh_type!r} (or use initialize_sharded), not {str(dev)!r}"
            )
    owners = _owners(model, "_parameters")
    modules = dict(model.named_modules(remove_duplicate=False))
    # buffers are made (not yet set) first: a failing initialiser leaves everything on meta
    made = [make_buffer(spec, dev, dtype) for spec in specs]

    rows: list[ParamRow] = []
    for row in report.rows:
        param = params.pop(row.qualname)
        module = modules.get(row.module_name)
        stream = _measured_stream(seed, row) if measure else KeyedStream(seed, row.qualname)
        if row.qualname in sharded:
            new = empty_sharded(param, dev, dtype)
            fill_sharded(row, new, stream, module)
            new = nn.Parameter(new, requires_grad=param.requires_grad)
            torch.utils.swap_tensors(param, new)  # FSDP2 keeps references to the object
            std = None
        else:
            t = torch.empty(row.shape, dtype=dtype or param.dtype, device=dev)
            fill_row(row, t, stream, module=module)
            new = nn.Parameter(t, requires_grad=param.requires_grad)
            for mod, attr, _ in owners.pop(id(param)):
                setattr(mod, attr, new)
            std = achieved_std(t, stream) if measure else None
        del param, new
        rows.append(
            dataclasses.replace(
                row,
                status="initialized",
                achieved_std=std,
                device=str(dev),
                dtype=row_dtype(row, dtype),
            )
        )
    for spec, buf in zip(specs, made, strict=True):
        for mod, attr in spec.owners:
            setattr(mod, attr, buf)
    report.rows = rows
    if sharded:
        _note(report, sharded)
    return report


def row_dtype(row: ParamRow, dtype: torch.dtype | None) -> str:
    """The dtype string a row gets once allocated (``dtype`` or the one it was built with)."""
    return row.dtype if dtype is None else str(dtype).removeprefix("torch.")
