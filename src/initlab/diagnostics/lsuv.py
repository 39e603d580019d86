"""LSUV: layer-sequential unit-variance initialisation (Mishkin & Matas 2016).

Mishkin & Matas, "All you need is a good init", ICLR 2016 (arXiv:1511.06422), Algorithm 1:

1. **Orthonormal pre-init** (Saxe et al. 2013): every Linear/Conv weight ``W`` gets initlab's
   ``orthogonal`` scheme (gain 1, layer-aware fans, the weight flattened to
   ``[out, in * prod(k)]``), and its bias is set to 0 (as the authors' PyTorch port does; the
   paper's Caffe code leaves biases to the net's filler, which is 0 by default).
2. For each Linear/Conv layer **in execution order** (recorded by a first forward pass): forward
   the batch, measure ``v = Var(B_L)`` of the layer's output over all its elements
   (population variance, float64), captured in a forward hook of the layer itself, i.e.
   before any following in-place activation overwrites it (the paper's
   ``var_before_relu_if_inplace``); then, while the criterion fails and fewer than
   ``max_iter`` rescalings were made: ``W <- W * sqrt(target_var / v)`` and measure again.
   Only the weight is rescaled (as in the paper); with a zero bias and a fixed input to the
   layer, one rescaling hits the target exactly, so further iterations only matter when the
   bias is not zero or the layer's input depends on its own weight (shared weights).

Tolerance semantics (``measure``):

* ``"var"`` (default): converged when ``|Var - target_var| < tol``. The paper's code uses
  ``tol = 0.02`` and at most 20 iterations: ``lsuv_(model, x, **LSUV_PAPER)``.
* ``"std"``: converged when ``|Std - sqrt(target_var)| < tol``. The authors' PyTorch port
  (LSUV-pytorch) uses ``std_tol = 0.1`` and 10 attempts: ``lsuv_(model, x, **LSUV_PYTORCH)``.

The defaults (``tol=0.1``, ``max_iter=10``, ``measure="var"``) are the PyTorch port's numbers
applied to the variance: |Var - 1| < 0.1, i.e. the std within about 5% of 1.

The data-dependent phase runs under ``torch.no_grad()`` in the model's current mode, leaves
torch's global RNG, buffers (BatchNorm running statistics), modes and ``.grad`` as they were,
and removes its hooks even on error; it changes only the Linear/Conv weights and biases. A
module called more than once is measured on its first call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..layers import compute_fans
from .hooks import first_tensor, prepare_inputs, preserved_state, select_layers
from .records import Rendered, fmt

if TYPE_CHECKING:
    from rich.table import Table

LSUV_PAPER: dict[str, Any] = {"tol": 0.02, "max_iter": 20, "measure": "var"}
LSUV_PYTORCH: dict[str, Any] = {"tol": 0.1, "max_iter": 10, "measure": "std"}
LSUV_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)
MEASURES = ("var", "std")


@dataclasses.dataclass
class LSUVLayer:
    """One layer's LSUV outcome: rescalings made, variance before/after, total weight scale.

    Attributes:
        name: the layer's qualified name.
        kind: its class name.
        iterations: the rescalings made.
        initial_var: the output variance before the first rescaling.
        final_var: the output variance after the last.
        scale: the product of the factors sqrt(target_var / Var) applied to the weight.
        converged: whether the tolerance was met.

    Example:
        >>> LSUVLayer("0", "Linear", 1, 4.0, 1.0, 0.5, True).to_dict()["scale"]
        0.5
    """

    name: str
    kind: str
    iterations: int
    initial_var: float
    final_var: float
    scale: float
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(repr=False)
class LSUVReport(Rendered):
    """What :func:`lsuv_` did, layer by layer in execution order.

    Attributes:
        layers: one :class:`LSUVLayer` per rescaled layer.
        tol: the tolerance used.
        max_iter: the maximum rescalings per layer.
        measure: ``"var"`` or ``"std"``.
        target_var: the output variance aimed at.
        orthonormal_preinit: whether weights were set orthogonal first.
        not_executed: selected layers the forward pass never called.

    Example:
        >>> rep = LSUVReport([LSUVLayer("0", "Linear", 1, 4.0, 1.0, 0.5, True)], 0.1, 10, "var",
        ...                  1.0, True)
        >>> rep.all_converged, rep.to_dict()["layers"][0]["final_var"]
        (True, 1.0)
    """

    layers: list[LSUVLayer]
    tol: float
    max_iter: int
    measure: str
    target_var: float
    orthonormal_preinit: bool
    not_executed: list[str] = dataclasses.field(default_factory=list)

    @property
    def all_converged(self) -> bool:
        """Whether every rescaled layer met the tolerance."""
        return all(x.converged for x in self.layers)

    def summary(self) -> str:
        """One line: layers rescaled, how many converged, the target."""
        done = sum(x.converged for x in self.layers)
        line = (f"{len(self.layers)} layer(s) rescaled, {done} converged to {self.measure} "
                f"{self.target_var:g} ± {self.tol:g}")  # fmt: skip
        if self.not_executed:
            line += f"; {len(self.not_executed)} never called"
        return line

    def table(self, title: str | None = None) -> Table:
        """A rich Table, one row per layer; the caption counts the converged ones."""
        from rich.table import Table

        crit = "|Var - target|" if self.measure == "var" else "|Std - sqrt(target)|"
        t = Table(
            title=title
            or f"LSUV: {crit} < {self.tol}, max {self.max_iter} iterations, "
            f"target variance {self.target_var}",
            caption=f"{sum(x.converged for x in self.layers)}/{len(self.layers)} converged"
            + (f"; not executed: {', '.join(self.not_executed)}" if self.not_executed else ""),
        )
        for h in ("#", "layer", "type", "iterations", "initial var", "final var", "scale", "ok"):
            t.add_column(h, justify="left" if h in ("layer", "type") else "right")
        for i, x in enumerate(self.layers):
            t.add_row(str(i), x.name, x.kind, str(x.iterations), fmt(x.initial_var),
                      fmt(x.final_var), fmt(x.scale), "yes" if x.converged else "NO")  # fmt: skip
        return t

    def to_dict(self) -> dict[str, Any]:
        """The settings, ``all_converged``, ``not_executed`` and the layers, as a dict."""
        return {
            "tol": self.tol,
            "max_iter": self.max_iter,
            "measure": self.measure,
            "target_var": self.target_var,
            "orthonormal_preinit": self.orthonormal_preinit,
            "all_converged": self.all_converged,
            "not_executed": list(self.not_executed),
            "layers": [x.to_dict() for x in self.layers],
        }


class _Stop(Exception):
    """Raised by the measuring hook: the rest of the forward pass is not needed."""


def _converged(v: float, target_var: float, tol: float, measure: str) -> bool:
    if measure == "var":
        return abs(v - target_var) < tol
    return abs(math.sqrt(v) - math.sqrt(target_var)) < tol


def lsuv_(
    model: nn.Module,
    inputs: Any,
    *,
    tol: float = 0.1,
    max_iter: int = 10,
    orthonormal_preinit: bool = True,
    target_var: float = 1.0,
    generator: torch.Generator | int | None = None,
    layers: Callable[[str, nn.Module], bool] | Iterable[str] | None = None,
    measure: str = "var",
) -> LSUVReport:
    """Initialise ``model``'s Linear/Conv layers in place by LSUV (module docstring) and report.

    Args:
        model: the model; its weights are modified in place.
        inputs: the batch: a tensor, a tuple/list of positional arguments or a dict of keyword
            arguments (never modified). Use a large, representative batch.
        tol, measure: stop when ``|Var - target_var| < tol`` (``measure="var"``) or
            ``|Std - sqrt(target_var)| < tol`` (``"std"``). See ``LSUV_PAPER``/``LSUV_PYTORCH``.
        max_iter: maximum number of rescalings per layer.
        orthonormal_preinit: first set every selected weight orthogonal and its bias to 0.
        target_var: the output variance to reach (1 in the paper).
        generator: random source of the orthonormal pre-init: a ``torch.Generator``, an int
            seed, or None for torch's global generator (which the pre-init then advances, as
            any ``torch.nn.init`` call would; the data-dependent phase never does).
        layers: restrict to these qualified module names, or a predicate ``(name, module)``.

    Returns:
        An :class:`LSUVReport`. Layers whose output variance is 0 or not finite cannot be
        rescaled: they are reported with ``converged=False``.

    Paper: Mishkin & Matas 2016, "All you need is a good init", https://arxiv.org/abs/1511.06422

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> report = lsuv_(model, x, generator=0)
        >>> report.all_converged, [round(layer.final_var, 1) for layer in report.layers]
        (True, [1.0, 1.0, 1.0])
        >>> round(model(x).var().item(), 1)
        1.0
    """
    from ..schemes import get_scheme

    if tol <= 0 or not math.isfinite(tol):
        raise ValueError(f"lsuv_: tol must be a positive number, got {tol}")
    if max_iter < 0:
        raise ValueError(f"lsuv_: max_iter must be >= 0, got {max_iter}")
    if target_var <= 0 or not math.isfinite(target_var):
        raise ValueError(f"lsuv_: target_var must be positive, got {target_var}")
    if measure not in MEASURES:
        raise ValueError(f"lsuv_: measure must be one of {MEASURES}, got {measure!r}")
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator().manual_seed(generator)
    selected = select_layers(model, layers, lambda m: isinstance(m, LSUV_LAYERS))
    if orthonormal_preinit:
        ortho = get_scheme("orthogonal")
        for m in selected:
            ortho(m.weight, compute_fans(m, "weight"), generator)
            if getattr(m, "bias", None) is not None:
                with torch.no_grad():
                    m.bias.zero_()

    report = LSUVReport([], tol, max_iter, measure, target_var, orthonormal_preinit)
    with preserved_state(model, params=False), torch.no_grad():
        run = _Runner(model, inputs)
        order = run.execution_order(selected)
        report.not_executed = [n for m, n in selected.items() if m not in order]
        for m in order:
            v = v0 = run.variance(m)
            scale, it = 1.0, 0
            while (
                not _converged(v, target_var, tol, measure)
                and it < max_iter
                and math.isfinite(v)
                and v > 0
            ):
                c = math.sqrt(target_var / v)
                m.weight.mul_(c)
                scale *= c
                it += 1
                v = run.variance(m)
            ok = math.isfinite(v) and _converged(v, target_var, tol, measure)
            report.layers.append(LSUVLayer(selected[m], type(m).__name__, it, v0, v, scale, ok))
    return report


class _Runner:
    """Forward passes on fresh copies of the batch, each from the same RNG state (dropout masks
    are identical across passes; ``preserved_state`` restores the caller's state at the end)."""

    def __init__(self, model: nn.Module, inputs: Any) -> None:
        self.model = model
        self.args, self.kwargs, _ = prepare_inputs(inputs, requires_grad=False)
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def forward(self) -> Any:
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        return self.model(*_fresh(self.args), **_fresh(self.kwargs))

    def execution_order(self, selected: Iterable[nn.Module]) -> list[nn.Module]:
        """The selected modules in the order of their first call."""
        order: list[nn.Module] = []

        def pre(m: nn.Module, _args: Any) -> None:
            if m not in order:
                order.append(m)

        handles = [m.register_forward_pre_hook(pre) for m in selected]
        try:
            self.forward()
        finally:
            for h in handles:
                h.remove()
        return order

    def variance(self, layer: nn.Module) -> float:
        """Variance of ``layer``'s output on its first call, read in the layer's forward hook
        (before any following in-place activation); the rest of the pass is skipped."""
        got: list[float] = []

        def hook(m: nn.Module, _args: Any, out: Any) -> None:
            if not got:
                y = first_tensor(out)
                if y is None:
                    raise TypeError(f"lsuv_: {type(m).__name__} returned no tensor")
                got.append(float(y.detach().to(torch.float64).var(correction=0)))
                raise _Stop

        handle = layer.register_forward_hook(hook)
        try:
            self.forward()
        except _Stop:
            pass
        finally:
            handle.remove()
        if not got:
            raise RuntimeError("lsuv_: the layer was not called in this forward pass")
        return got[0]


def _fresh(x: Any) -> Any:
    """Clone floating tensors so an in-place first layer cannot alter the batch between passes."""
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_fresh(v) for v in x)
    return x.clone() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
