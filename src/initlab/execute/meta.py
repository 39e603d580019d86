"""Materialise a model built on the meta device: allocate each parameter once and fill it.

::

    with initlab.meta_build():         # or torch.device("meta")
        model = GPT(config)            # no memory, no default init
    initlab.materialize(model, "gpt2:n_layers=12", seed=0)

is bit-identical to ``initlab.initialize(GPT(config), "gpt2:n_layers=12", seed=0)``, without
building the model on CPU first and without running any layer's default init. It is the same
executor and fill (:func:`initlab.execute.executor.execute`) as ``initialize``; only the
target differs: a fresh tensor, allocated on ``device`` in ``dtype`` right before it is
filled, and set on the model only once every parameter and buffer is made (all or nothing:
a failure leaves the model entirely on meta). Peak memory stays close to the model's own size
(plus a few chunks of scratch per stream thread, ~2 MiB each).

* **Ties** stay ties: the new Parameter object is set on every module that held the old one.
* **Buffers** made by the module's own code (``meta_build()``, the default) are kept, moved to
  ``device``, in their own dtype (``dtype`` casts parameters only). Buffers on meta become
  real: BatchNorm/InstanceNorm ``running_mean`` 0, ``running_var`` 1 and
  ``num_batches_tracked`` 0, as the layers define them. Any other buffer (a user's positional
  table, a loss weight, spectral-norm vectors...) raises :class:`MaterializeError` naming it,
  unless ``buffers={"name or glob": initialiser}`` supplies it; an initialiser is a number
  (fill), a tensor (copied) or a callable receiving the empty buffer (fill it in place, or
  return a tensor to copy).
* **Unmatched or excluded parameters** raise: on the meta device there are no values to keep,
  so "leave it as it is" has no meaning. Add a rule, a default
  (``Policy(..., unmatched="default", default="normal:std=0.02")``) or materialise them first.
* **Building on meta.** ``torch.device("meta")`` still runs every layer's ``reset_parameters``
  on meta tensors: no memory, but not free (torch routes ``normal_`` on meta through its
  reference implementations, whose first call imports torch._dynamo: 1.8 s here).
  :func:`meta_build` is ``torch.device("meta")`` that also skips those fills.
* **DTensor parameters** (FSDP2, tensor parallel) get a local shard of this rank's shape and
  are filled shard-locally (:mod:`initlab.execute.shard`); the Parameter object is kept
  (``torch.utils.swap_tensors``), as FSDP2 needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..plan import PolicyLike, uncovered_blocks
from ..report import InitReport, ParamRow
from .buffers import BufferInit, MaterializeError, make_buffer, owners, plan_buffers
from .executor import execute
from .shard import as_local_layout, is_dtensor

__all__ = ["BufferInit", "MaterializeError", "OnMeta", "materialize", "meta_build"]


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


class _ParamsToMeta:
    """Moves every Parameter registered while active to the meta device (buffers stay real).

    Patches ``nn.Module.register_parameter`` as accelerate's ``init_empty_weights`` does: a
    layer's ``__init__`` allocates its parameter on the real device (``torch.empty``: no values
    written) and the parameter is moved to meta as soon as it is set on the module, so that the
    module's own code computes its buffers (rotary ``inv_freq``, ``position_ids``, masks) for real.
    """

    def __enter__(self) -> None:
        self.original = nn.Module.register_parameter
        original = self.original

        def register_parameter(module: nn.Module, name: str, param: Any) -> None:
            original(module, name, param)
            p = module._parameters.get(name)
            if p is not None and not p.is_meta:
                kwargs = dict(getattr(p, "__dict__", {}))
                kwargs["requires_grad"] = p.requires_grad
                module._parameters[name] = type(p)(p.to("meta"), **kwargs)

        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        nn.Module.register_parameter = self.original  # type: ignore[method-assign]


@contextlib.contextmanager
def meta_build(include_buffers: bool = False) -> Iterator[None]:
    """Build a model with its parameters on the meta device, without running any default init::

        with initlab.meta_build():
            model = GPT(config)
        initlab.materialize(model, policy, seed=0)

    Parameters go to ``meta`` and ``torch.nn.init`` functions and random in-place fills
    (``normal_``, ``uniform_``...) of meta tensors return at once: on meta they compute nothing,
    yet torch's first ``normal_`` on meta imports torch._dynamo (1.8 s of a 2-core machine's
    time). Buffers are made for real by the module's own code, as accelerate's
    ``init_empty_weights(include_buffers=False)`` does, so non-persistent buffers (rotary
    frequencies, position ids, masks) need no initialiser and keep the dtype an eager build
    gives them. Not thread-safe while active (it patches ``nn.Module.register_parameter``).

    Args:
        include_buffers: also put buffers on meta (everything is created under
            ``torch.device("meta")``); ``materialize`` then needs to know every buffer's value
            (the layer registry's, or ``buffers=``).

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     m = nn.Linear(3, 2)
        ...     bn = nn.BatchNorm1d(3)
        ...     on_cpu = torch.zeros(1, device="cpu")
        >>> m.weight.device.type, on_cpu.device.type
        ('meta', 'cpu')
        >>> bn.weight.is_meta, bn.running_var.is_meta, bn.running_var.tolist()
        (True, False, [1.0, 1.0, 1.0])
        >>> _ = initlab.materialize(m, "kaiming", 0)
        >>> m.weight.device.type, tuple(m.weight.shape)
        ('cpu', (2, 3))
        >>> with initlab.meta_build(include_buffers=True):
        ...     bn = nn.BatchNorm1d(3)
        >>> bn.running_var.is_meta
        True
    """
    if include_buffers:
        with torch.device("meta"), _SkipMetaInit():
            yield
        return
    with _ParamsToMeta(), _SkipMetaInit():
        yield


def check_on_meta(model: nn.Module, what: str = "materialize") -> None:
    """Raise :class:`MaterializeError` unless every parameter is on meta (buffers may be real:
    ``meta_build()`` makes them with the module's own code)."""
    real = [n for n, t in model.named_parameters() if not t.is_meta]
    if real:
        shown = ", ".join(real[:8]) + (f" and {len(real) - 8} more" if len(real) > 8 else "")
        raise MaterializeError(
            f"{what} expects a model built on the meta device (`with initlab.meta_build(): "
            f"model = ...`), but {len(real)} parameter(s) already have storage: {shown}. "
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
            f"(initlab.Rule('normal:std=0.02', param={left[0]!r})) or a default that needs no "
            "layer knowledge (Policy(..., unmatched='default', default='normal:std=0.02'))"
        )


def row_dtype(row: ParamRow, dtype: torch.dtype | None) -> str:
    """The dtype string a row gets once allocated (``dtype`` or the one it was built with)."""
    return row.dtype if dtype is None else str(dtype).removeprefix("torch.")


def check_dtype(dtype: torch.dtype | None, error: type[Exception] = MaterializeError) -> None:
    """Raise ``error`` unless ``dtype`` is a floating torch.dtype or None."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise error(f"dtype must be a floating torch.dtype or None, got {dtype!r}")


class OnMeta:
    """Allocate each row's tensor on ``device`` (a DTensor's local shard for sharded rows),
    make the buffers, and set all of them on the model at commit; abort leaves it on meta.

    The :class:`~initlab.execute.executor.Target` of :func:`materialize`.

    Args:
        model: the model built on meta.
        device: where the new tensors are allocated.
        dtype: floating dtype of parameters and floating buffers (None: as built).
        buffers: initialisers of buffers initlab does not know (see :func:`materialize`).

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> from initlab.execute.executor import execute
        >>> with initlab.meta_build():
        ...     m = nn.Linear(4, 3)
        >>> _ = execute(m, "kaiming", 0, OnMeta(m, torch.device("cpu"), None, None))
        >>> eager = nn.Linear(4, 3)
        >>> _ = initlab.initialize(eager, "kaiming", 0)
        >>> m.weight.device.type, torch.equal(m.weight, eager.weight)
        ('cpu', True)
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        dtype: torch.dtype | None,
        buffers: Mapping[str, BufferInit] | None,
    ) -> None:
        self.model, self.device, self.dtype, self.buffers = model, device, dtype, buffers
        self.staged: list[tuple[Tensor, Tensor]] = []
        self.made: list[tuple[Any, Tensor]] = []

    def check(self, report: InitReport, params: dict[str, Tensor], sharded: set[str]) -> None:
        check_rows(report)
        for name in sorted(sharded):
            mesh_type = params[name].device_mesh.device_type  # type: ignore[attr-defined]
            if self.device.type != mesh_type:
                raise MaterializeError(
                    f"parameter {name!r} is a DTensor on a {mesh_type!r} device mesh: "
                    f"materialise with device={mesh_type!r} (or use initialize_sharded), "
                    f"not {str(self.device)!r}"
                )
        specs = plan_buffers(self.model, self.buffers)
        self.owners = owners(self.model, "_parameters")
        # buffers are made (not yet set) first: a failing initialiser leaves everything on meta
        self.made = [(spec, make_buffer(spec, self.device, self.dtype)) for spec in specs]

    def open(self, row: ParamRow, local: Tensor) -> Tensor:
        return torch.empty(local.shape, dtype=self.dtype or local.dtype, device=self.device)

    def put(self, row: ParamRow, param: Tensor, filled: Tensor) -> dict[str, Any]:
        self.staged.append((param, filled))
        return {"device": str(self.device), "dtype": row_dtype(row, self.dtype)}

    def commit(self, report: InitReport) -> None:
        for param, t in self.staged:
            new = nn.Parameter(as_local_layout(param, t), requires_grad=param.requires_grad)
            if is_dtensor(param):  # FSDP2 keeps references to the Parameter object
                torch.utils.swap_tensors(param, new)
            else:
                for mod, attr, _ in self.owners[id(param)]:
                    setattr(mod, attr, new)
        for spec, buf in self.made:
            for mod, attr in spec.owners:
                setattr(mod, attr, buf)
        self.abort()

    def abort(self) -> None:
        self.staged.clear()
        self.made.clear()


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
    checked (meta device, rules, buffers, sharded layouts) before anything is allocated, and
    the model changes only once every tensor is made: a fill that fails on any parameter
    raises naming it and its rule, with the model still entirely on meta. Memory: the
    model's own size (the new tensors are held until they are all made, then set).

    Args:
        model: a model whose parameters and buffers are all on the meta device.
        policy: a Policy, preset name, policy file path or dict (as for ``initialize``).
        seed: the seed of the per-parameter streams.
        device: where tensors are allocated (DTensor shards: the device mesh's device type).
        dtype: the floating dtype of the parameters (None: as built); buffers keep the dtype
            they were built with, as in an eager build in that dtype.
        buffers: initialisers of buffers initlab does not know, by name or glob.
        strict: raise :class:`~initlab.plan.UnmatchedParametersError` for unmatched
            parameters (without it they raise :class:`MaterializeError` all the same).
        exclude: parameter-name patterns to leave out (which, on meta, is an error).
        measure: record each parameter's achieved std in the report (summed while the
            values are written where the fill allows, else one more pass).

    Returns:
        The report, with ``device``/``dtype`` of each row set to what was allocated.

    Example:
        >>> import torch, initlab
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     big = nn.Linear(8, 4)
        >>> _ = initlab.materialize(big, "kaiming", seed=0)
        >>> eager = nn.Linear(8, 4)
        >>> _ = initlab.initialize(eager, "kaiming", seed=0)
        >>> torch.equal(big.weight, eager.weight)
        True
    """
    check_dtype(dtype)
    check_on_meta(model)
    target = OnMeta(model, torch.device(device), dtype, buffers)
    return execute(model, policy, seed, target, strict=strict, exclude=exclude, measure=measure)
