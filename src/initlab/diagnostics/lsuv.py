"""LSUV: layer-sequential unit-variance initialisation (Mishkin & Matas 2016).

Mishkin & Matas, "All you need is a good init", ICLR 2016 (arXiv:1511.06422), Algorithm 1,
on every **weight-bearing layer the layer registry knows** (:func:`initlab.layers.weight_params`,
role ``weight``: Linear, Conv, ConvTranspose, transformers' ``Conv1D`` ``[in, out]``, timm's
fused ``qkv``...):

1. **Orthonormal pre-init** (Saxe et al. 2013): every such weight ``W`` gets initlab's
   ``orthogonal`` scheme (gain 1) with the registry's fans, so a packed weight is orthogonal
   block by block (GPT-2's ``c_attn`` ``[in, 3·out]``: each of q, k, v along dim 1), and its
   bias is set to 0 (as the authors' PyTorch port does; the paper's Caffe code leaves biases to
   the net's filler, which is 0 by default). A 2-D orthogonal matrix stays orthogonal when
   transposed, so Conv1D's ``[in, out]`` layout needs nothing more.
2. For each such layer **in execution order** (recorded by a first forward pass): forward
   the batch, measure ``v = Var(B_L)`` of the layer's output over all its elements
   (population variance, float64), captured in a forward hook of the layer itself, i.e.
   before any following in-place activation overwrites it (the paper's
   ``var_before_relu_if_inplace``); then, while the criterion fails and fewer than
   ``max_iter`` rescalings were made: ``W <- W * sqrt(target_var / v)`` and measure again.
   Only the weight is rescaled (as in the paper); with a zero bias and a fixed input to the
   layer, one rescaling hits the target exactly, so further iterations only matter when the
   bias is not zero or the layer's input depends on its own weight (shared weights).

**Packed q/k/v** (Conv1D ``c_attn``, timm ``qkv``): each block's slice of the output is used
separately (as queries, keys and values), so each block is rescaled to unit variance on its own
slice: one report row per block. The slice is found along the output's last dimension (or
dim 1) whose size is the packed size; a layer whose blocks are not in its output
(MultiheadAttention's ``in_proj_weight``: its output is the attention's) is skipped.

**Left as they are**, each listed in :attr:`LSUVReport.skipped` with its reason, and named in
one warning: a weight **tied** to a parameter met earlier in module order (GPT-2's ``lm_head``
shares ``wte.weight``: a tied tensor is rescaled once, by its first owner, and an Embedding is
not a layer LSUV rescales, so ``wte`` keeps its std); a layer with **several weights** (RNN
``weight_ih``/``weight_hh``: one output cannot tell them apart); packed blocks not in the
output; and parameters of layers the **registry does not know** (``initlab.register_layer``).
Embeddings, position tables and norms are not weight-bearing: their output is a row lookup or
an element-wise scale, not a sum over ``fan_in`` inputs, and LSUV (like the paper, which
covers conv and fully connected layers) leaves them as they are without a note.

Tolerance semantics (``measure``):

* ``"var"`` (default): converged when ``|Var - target_var| < tol``. The paper's code uses
  ``tol = 0.02`` and at most 20 iterations: ``lsuv_(model, x, **LSUV_PAPER)``.
* ``"std"``: converged when ``|Std - sqrt(target_var)| < tol``. The authors' PyTorch port
  (LSUV-pytorch) uses ``std_tol = 0.1`` and 10 attempts: ``lsuv_(model, x, **LSUV_PYTORCH)``.

The defaults (``tol=0.1``, ``max_iter=10``, ``measure="var"``) are the PyTorch port's numbers
applied to the variance: |Var - 1| < 0.1, i.e. the std within about 5% of 1.

The data-dependent phase runs under ``torch.no_grad()`` in the model's current mode, leaves
torch's global RNG, buffers (BatchNorm running statistics), modes and ``.grad`` as they were,
and removes its hooks even on error; it changes only the rescaled layers' weights and biases.
A module called more than once is measured on its first call.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..fans import Block
from ..layers import WeightParam, unknown_params, weight_params
from .hooks import first_tensor, prepare_inputs, preserved_state, select_layers
from .records import SkippedLayer, skip_note
from .rendering import Rendered, fmt

if TYPE_CHECKING:
    from rich.table import Table

LSUV_PAPER: dict[str, Any] = {"tol": 0.02, "max_iter": 20, "measure": "var"}
LSUV_PYTORCH: dict[str, Any] = {"tol": 0.1, "max_iter": 10, "measure": "std"}
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
        block: for a packed weight, the block (``"q"``) whose output slice this row measures
            and whose slice of the weight it rescales; None for the whole layer.

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
    block: str | None = None

    @property
    def label(self) -> str:
        """The layer's name, with the block in brackets for a packed weight (``c_attn[q]``)."""
        return self.name if self.block is None else f"{self.name}[{self.block}]"

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
        skipped: weight-bearing layers left as they were, with the reason (tied weights,
            several weights in one layer, packed blocks not in the output, layers the
            registry does not know).

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
    skipped: list[SkippedLayer] = dataclasses.field(default_factory=list)

    @property
    def note(self) -> str | None:
        """One line naming the skipped layers by kind (:func:`skip_note`), or None."""
        return skip_note("lsuv_", self.skipped)

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
        if self.skipped:
            line += f"; {len(self.skipped)} skipped (.skipped)"
        return line

    def table(self, title: str | None = None) -> Table:
        """A rich Table, one row per layer (per block of a packed weight); the caption counts
        the converged ones and names the skipped layers."""
        from rich.markup import escape
        from rich.table import Table

        crit = "|Var - target|" if self.measure == "var" else "|Std - sqrt(target)|"
        t = Table(
            title=title
            or f"LSUV: {crit} < {self.tol}, max {self.max_iter} iterations, "
            f"target variance {self.target_var}",
            caption=f"{sum(x.converged for x in self.layers)}/{len(self.layers)} converged"
            + (f"; not executed: {', '.join(self.not_executed)}" if self.not_executed else "")
            + (f"\n{escape(self.note)}" if self.note else ""),
        )
        for h in ("#", "layer", "type", "iterations", "initial var", "final var", "scale", "ok"):
            t.add_column(h, justify="left" if h in ("layer", "type") else "right")
        for i, x in enumerate(self.layers):
            t.add_row(str(i), escape(x.label), x.kind, str(x.iterations), fmt(x.initial_var),
                      fmt(x.final_var), fmt(x.scale), "yes" if x.converged else "NO")  # fmt: skip
        return t

    def to_dict(self) -> dict[str, Any]:
        """The settings, ``all_converged``, ``not_executed``, ``skipped`` and the layers."""
        return {
            "tol": self.tol,
            "max_iter": self.max_iter,
            "measure": self.measure,
            "target_var": self.target_var,
            "orthonormal_preinit": self.orthonormal_preinit,
            "all_converged": self.all_converged,
            "not_executed": list(self.not_executed),
            "skipped": [x.to_dict() for x in self.skipped],
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
    """Initialise ``model``'s weight-bearing layers in place by LSUV (module docstring).

    Args:
        model: the model; its weights are modified in place.
        inputs: the batch: a tensor, a tuple/list of positional arguments or a dict of keyword
            arguments (never modified). Use a large, representative batch.
        tol, measure: stop when ``|Var - target_var| < tol`` (``measure="var"``) or
            ``|Std - sqrt(target_var)| < tol`` (``"std"``). See ``LSUV_PAPER``/``LSUV_PYTORCH``.
        max_iter: maximum number of rescalings per layer (per block for a packed weight).
        orthonormal_preinit: first set every rescaled weight orthogonal (block by block) and
            its bias to 0.
        target_var: the output variance to reach (1 in the paper).
        generator: random source of the orthonormal pre-init: a ``torch.Generator``, an int
            seed, or None for torch's global generator (which the pre-init then advances, as
            any ``torch.nn.init`` call would; the data-dependent phase never does).
        layers: restrict to these qualified module names, or a predicate ``(name, module)``.

    Returns:
        An :class:`LSUVReport`. Layers whose output variance is 0 or not finite cannot be
        rescaled: they are reported with ``converged=False``. Layers left as they were are in
        ``skipped`` and named in one ``UserWarning`` (the report's ``note``).

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
    layer_list, skipped = _lsuv_layers(model, layers)
    report = LSUVReport([], tol, max_iter, measure, target_var, orthonormal_preinit)

    with preserved_state(model, params=False), torch.no_grad():
        order, shapes = _Runner(model, inputs).execution_order(layer_list)
    todo: dict[nn.Module, _Target] = {}
    for m, (name, w, biases) in layer_list.items():
        slices = _block_slices(w, shapes.get(m)) if m in shapes else []
        if slices is None:
            total = int(w.tensor.shape[w.blocks[0].dim])
            names = "/".join(b.name for b in w.blocks)
            skipped.append(SkippedLayer(name, w.kind, (
                f"its {names} blocks are not in its output (output {tuple(shapes[m])}, packed "
                f"size {total}): each block's variance cannot be measured"
            )))  # fmt: skip
            continue
        todo[m] = _Target(name, w, biases, slices)
    report.not_executed = [t.name for m, t in todo.items() if m not in order]
    report.skipped = skipped

    if orthonormal_preinit:
        ortho = get_scheme("orthogonal")
        for t in todo.values():
            ortho(t.weight.tensor, t.weight.fans, generator)
            with torch.no_grad():
                for b in t.biases:
                    b.zero_()

    with preserved_state(model, params=False), torch.no_grad():
        run = _Runner(model, inputs)
        for m in order:
            if m in todo:
                report.layers += _rescale(run, m, todo[m], target_var, tol, max_iter, measure)
    if report.note:
        warnings.warn(report.note, UserWarning, stacklevel=2)
    return report


@dataclasses.dataclass
class _Target:
    """A layer LSUV rescales: its name, weight, biases and the output slices it measures
    (``[(None, None)]`` for the whole output, else ``[(block, output dim)]``)."""

    name: str
    weight: WeightParam
    biases: list[Tensor]
    slices: list[tuple[Block | None, int | None]]


def _lsuv_layers(
    model: nn.Module, layers: Callable[[str, nn.Module], bool] | Iterable[str] | None
) -> tuple[dict[nn.Module, tuple[str, WeightParam, list[Tensor]]], list[SkippedLayer]]:
    """{module: (name, its weight, its biases)} of the selected layers LSUV can rescale, in
    module order, and the selected weight-bearing layers it must leave, with the reason."""
    params = weight_params(model, roles=("weight", "bias"))
    weights: dict[nn.Module, list[WeightParam]] = {}
    for w in params:
        if w.role == "weight":
            weights.setdefault(w.module, []).append(w)
    unknown = {m: [] for n, m in model.named_modules()}
    for qual, _ in unknown_params(model):
        mod_name = qual.rpartition(".")[0]
        unknown[model.get_submodule(mod_name)].append(qual.rpartition(".")[2])
    selected = select_layers(model, layers, lambda m: m in weights or bool(unknown.get(m)))
    out: dict[nn.Module, tuple[str, WeightParam, list[Tensor]]] = {}
    skipped: list[SkippedLayer] = []
    for m, name in selected.items():
        kind = type(m).__name__
        own = weights.get(m, [])
        if unknown.get(m):
            skipped.append(SkippedLayer(name, kind, (
                f"the layer registry does not know {', '.join(unknown[m])} (its fans would be "
                "guessed); teach it with initlab.register_layer"
            )))  # fmt: skip
        elif len(own) > 1:
            skipped.append(SkippedLayer(name, kind, (
                f"{len(own)} weights ({', '.join(w.param_name for w in own[:3])}"
                f"{', ...' if len(own) > 3 else ''}): one output cannot tell them apart"
            )))  # fmt: skip
        elif own[0].tied_to is not None:
            owner = model.get_submodule(own[0].tied_to.rpartition(".")[0])
            by = "" if owner in weights else f", and LSUV does not rescale {type(owner).__name__}s"
            skipped.append(SkippedLayer(name, kind, (
                f"weight tied to {own[0].tied_to} ({type(owner).__name__}): a tied weight is "
                f"rescaled once, by its first owner{by}"
            )))  # fmt: skip
        else:
            biases = [w.tensor for w in params if w.module is m and w.role == "bias"
                      and w.tied_to is None]  # fmt: skip
            out[m] = (name, own[0], biases)
    return out, skipped


def _block_slices(
    w: WeightParam, shape: tuple[int, ...] | None
) -> list[tuple[Block | None, int | None]] | None:
    """The output slices of ``w``'s blocks (each block's units along the output dimension
    whose size is the packed size: the last, else dim 1), ``[(None, None)]`` for an unpacked
    weight, None when the blocks are not in the output."""
    if not w.blocks:
        return [(None, None)]
    total = int(w.tensor.shape[w.blocks[0].dim])
    if shape is None or len(shape) < 1:
        return None
    if shape[-1] == total:
        dim = len(shape) - 1
    elif len(shape) >= 3 and shape[1] == total:
        dim = 1
    else:
        return None
    return [(b, dim) for b in w.blocks]


def _rescale(
    run: _Runner, m: nn.Module, t: _Target, target_var: float, tol: float, max_iter: int,
    measure: str,
) -> list[LSUVLayer]:  # fmt: skip
    """Rescale ``t``'s weight (each block on its own output slice) until converged."""
    v = v0 = run.variances(m, t.slices)
    scale, its = [1.0] * len(v), [0] * len(v)

    def pending(i: int) -> bool:
        return (
            not _converged(v[i], target_var, tol, measure)
            and its[i] < max_iter
            and math.isfinite(v[i])
            and v[i] > 0
        )

    while todo := [i for i in range(len(v)) if pending(i)]:
        w = t.weight.tensor
        for i in todo:
            c = math.sqrt(target_var / v[i])
            block = t.slices[i][0]
            (w if block is None else w.narrow(block.dim, block.start, block.size)).mul_(c)
            scale[i] *= c
            its[i] += 1
        v = run.variances(m, t.slices)
    return [
        LSUVLayer(
            t.name,
            t.weight.kind,
            its[i],
            v0[i],
            v[i],
            scale[i],
            math.isfinite(v[i]) and _converged(v[i], target_var, tol, measure),
            None if b is None else b.name,
        )
        for i, (b, _) in enumerate(t.slices)
    ]


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

    def execution_order(
        self, selected: Iterable[nn.Module]
    ) -> tuple[list[nn.Module], dict[nn.Module, tuple[int, ...]]]:
        """The selected modules in the order of their first call, and their first outputs'
        shapes."""
        order: list[nn.Module] = []
        shapes: dict[nn.Module, tuple[int, ...]] = {}

        def pre(m: nn.Module, _args: Any) -> None:
            if m not in order:
                order.append(m)

        def post(m: nn.Module, _args: Any, out: Any) -> None:
            y = first_tensor(out)
            if m not in shapes and y is not None:
                shapes[m] = tuple(y.shape)

        handles = []
        for m in selected:
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        try:
            self.forward()
        finally:
            for h in handles:
                h.remove()
        return order, shapes

    def variances(
        self, layer: nn.Module, slices: list[tuple[Block | None, int | None]]
    ) -> list[float]:
        """Variance of each slice of ``layer``'s output on its first call, read in the layer's
        forward hook (before any following in-place activation); the rest of the pass is
        skipped."""
        got: list[float] = []

        def hook(m: nn.Module, _args: Any, out: Any) -> None:
            if not got:
                y = first_tensor(out)
                if y is None:
                    raise TypeError(f"lsuv_: {type(m).__name__} returned no tensor")
                y = y.detach().to(torch.float64)
                for block, dim in slices:
                    part = y if block is None else y.narrow(dim, block.start, block.size)
                    got.append(float(part.var(correction=0)))
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
        return got


def _fresh(x: Any) -> Any:
    """Clone floating tensors so an in-place first layer cannot alter the batch between passes."""
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_fresh(v) for v in x)
    return x.clone() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
