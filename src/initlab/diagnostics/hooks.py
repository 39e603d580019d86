"""Forward/backward capture and :func:`diagnose`: per-layer signal propagation of one batch.

How it works: a forward pre-hook on every layer takes input statistics (before an in-place
activation overwrites its input) and creates the record; a forward hook takes output
statistics immediately (before a following in-place activation modifies the output) and
registers a **tensor** hook on the output for dL/d(output). Tensor hooks registered before an
in-place modification receive the gradient with respect to the value before the modification
(torch autograd semantics), so a Linear followed by ``nn.ReLU(inplace=True)`` reports the
pre-activation's gradient and the ReLU the post-activation's. No module backward hooks are
used (they do not support in-place outputs). Gradients come from ``torch.autograd.grad``, so
no ``.grad`` is ever written.

A "layer" is any module with parameters of its own (Linear, Conv, MultiheadAttention, norms,
PReLU, a custom module with a parameter) or an activation module (:data:`ACTIVATIONS`). A
"weight layer" is one the layer registry gives a parameter of role ``weight``
(:func:`initlab.layers.weight_params`), or one with a >= 2-D parameter the registry does not know.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fans import Fans
from ..layers import unknown_params, weight_params
from .records import Diagnosis, Histogram, LayerRecord, SingularValues, Thresholds, WeightStats

RELU_FAMILY: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Hardswish,
)  # fmt: skip
SATURATING: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Softsign,
                                            nn.Hardsigmoid)  # fmt: skip
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    *RELU_FAMILY, *SATURATING, nn.Softplus, nn.Tanhshrink, nn.LogSigmoid, nn.Threshold,
)  # fmt: skip
_CHANNELS_FIRST: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
)  # fmt: skip
_CHANNELS_LAST = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.MultiheadAttention, nn.Embedding)


def is_activation(m: nn.Module) -> bool:
    """Whether ``m`` is an activation module (:data:`ACTIVATIONS`: the ReLU family, the saturating
    ones and a few others).

    Args:
        m: a module.

    Returns:
        True for an activation.

    Example:
        >>> is_activation(nn.GELU()), is_activation(nn.Linear(2, 2))
        (True, False)
    """
    return isinstance(m, ACTIVATIONS)


def is_layer(m: nn.Module) -> bool:
    """A module diagnose records: own parameters, a parametrization, or an activation.

    Args:
        m: a module.

    Returns:
        True when :func:`diagnose` records its calls by default.

    Example:
        >>> is_layer(nn.Linear(2, 2)), is_layer(nn.ReLU()), is_layer(nn.Sequential())
        (True, True, False)
    """
    own = next(m.parameters(recurse=False), None) is not None
    return own or is_activation(m) or torch.nn.utils.parametrize.is_parametrized(m)


def first_tensor(x: Any) -> Tensor | None:
    """The first tensor in ``x`` (a tensor, or nested tuple/list/dict): MHA -> attn_output.

    Args:
        x: a module's inputs or outputs.

    Returns:
        The first tensor found depth-first, or None.

    Example:
        >>> first_tensor((None, {"a": torch.ones(1)}, torch.zeros(2)))
        tensor([1.])
    """
    if isinstance(x, Tensor):
        return x
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (tuple, list)) else ()
    for v in items:
        t = first_tensor(v)
        if t is not None:
            return t
    return None


def moments(t: Tensor) -> tuple[float, float]:
    """Mean and population std (``correction=0``) of all elements, in float64.

    Args:
        t: any tensor.

    Returns:
        ``(mean, std)`` as floats (NaN for an empty tensor).

    Example:
        >>> moments(torch.tensor([1.0, 3.0]))
        (2.0, 1.0)
    """
    d = t.detach().to(torch.float64)
    return (float(d.mean()), float(d.std(correction=0))) if d.numel() else (math.nan, math.nan)


def histogram(t: Tensor, bins: int, *, drop_zeros: bool = False) -> Histogram:
    """Counts over the central 99% of the finite values (0.5% and 99.5% quantiles).

    The range is robust to a few outliers, which would otherwise squeeze the bulk of the
    distribution into one bin; values outside it are left out. ``drop_zeros`` leaves exact
    zeros out too (a ReLU's output is half zeros, a spike that hides the rest); the share
    that was left out is ``1 - sum(counts) / numel``. Up to 200 values span their min..max.

    Args:
        t: the values.
        bins: the number of equal bins.
        drop_zeros: leave exact zeros out.

    Returns:
        A :class:`~initlab.diagnostics.records.Histogram`.

    Example:
        >>> histogram(torch.arange(10.0), 3)
        Histogram(edges=[0.0, 3.0, 6.0, 9.0], counts=[3, 3, 4])
    """
    d = t.detach().flatten().to(torch.float32)
    d = d[torch.isfinite(d)]
    if drop_zeros:
        d = d[d != 0]
    if d.numel() > 200:
        sample = d if d.numel() <= 1_000_000 else d[:: d.numel() // 1_000_000 + 1]
        q = torch.quantile(sample, torch.tensor([0.005, 0.995]))
        lo, hi = float(q[0]), float(q[1])
    else:
        lo, hi = (float(d.min()), float(d.max())) if d.numel() else (0.0, 0.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(d, bins=bins, min=lo, max=hi)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return Histogram([float(e) for e in edges], [int(c) for c in counts])


def units_view(y: Tensor, dim: int | None) -> Tensor:
    """``y`` as [units, values]: the unit dimension first, everything else flattened.

    Args:
        y: a layer's output.
        dim: the dimension of units (features or channels); None: one unit.

    Returns:
        A 2-D view or copy of ``y`` (detached).

    Example:
        >>> units_view(torch.zeros(8, 3, 4, 4), 1).shape
        torch.Size([3, 128])
    """
    if dim is None or y.ndim < 2:
        return y.detach().reshape(-1, 1)
    return y.detach().movedim(dim, 0).reshape(y.shape[dim], -1)


def dead_fraction(y: Tensor, dim: int | None) -> float:
    """Fraction of units never > 0 over the batch and positions (ReLU family).

    Args:
        y: an activation's output.
        dim: the dimension of units.

    Returns:
        dead units / units.

    Example:
        >>> dead_fraction(torch.tensor([[0.0, 1.0], [0.0, 2.0]]), 1)  # unit 0 is dead
        0.5
    """
    u = units_view(y, dim)
    return float(1.0 - (u > 0).any(dim=1).to(torch.float64).mean())


def saturated_fraction(m: nn.Module, y: Tensor, dim: int | None, t: Thresholds) -> float:
    """Fraction of units with >= ``t.saturation_fraction`` of values saturated (see records).

    Args:
        m: the activation module (its type picks the saturated region).
        y: its output.
        dim: the dimension of units.
        t: the thresholds (``saturation_level``, ``saturation_fraction``).

    Returns:
        saturated units / units.

    Example:
        >>> from initlab.diagnostics.records import Thresholds
        >>> y = torch.tensor([[1.0, 0.0], [1.0, 0.5]])  # unit 0: |tanh| > 0.99 everywhere
        >>> saturated_fraction(nn.Tanh(), y, 1, Thresholds())
        0.5
    """
    u, lv = units_view(y, dim), t.saturation_level
    if isinstance(m, (nn.Tanh, nn.Softsign)):
        sat = u.abs() > lv
    elif isinstance(m, nn.Sigmoid):
        sat = (u < 1 - lv) | (u > lv)
    elif isinstance(m, nn.Hardtanh):
        sat = (u <= m.min_val) | (u >= m.max_val)
    else:  # Hardsigmoid clips at 0 and 1
        sat = (u <= 0) | (u >= 1)
    return float((sat.to(torch.float64).mean(dim=1) >= t.saturation_fraction).double().mean())


def sv_summary(w: Tensor) -> SingularValues:
    """Largest/smallest singular value and condition number of ``w.reshape(w.shape[0], -1)``.

    Args:
        w: a weight with at least 2 dimensions.

    Returns:
        A :class:`~initlab.diagnostics.records.SingularValues` (condition inf when the
        smallest is 0).

    Example:
        >>> sv_summary(torch.diag(torch.tensor([3.0, 0.5])))
        SingularValues(largest=3.0, smallest=0.5, condition=6.0)
    """
    s = torch.linalg.svdvals(w.detach().reshape(w.shape[0], -1).to(torch.float64))
    hi, lo = float(s.max()), float(s.min())
    return SingularValues(hi, lo, hi / lo if lo > 0 else math.inf)


# -- leaving the model as it was -------------------------------------------------------------
@contextlib.contextmanager
def preserved_state(
    model: nn.Module,
    *,
    train: bool | None = None,
    seed: int | None = None,
    params: bool = True,
    buffers: bool = True,
) -> Iterator[None]:
    """Run a block and put the model and torch's global RNG back as they were.

    Restores: every module's ``training`` flag (the block runs in ``model.train(train)`` when
    ``train`` is given, else in the current modes), torch's CPU RNG state (and the CUDA states
    when CUDA is initialised) so dropout does not advance it, buffer values (BatchNorm running
    statistics), parameter values when ``params`` and every parameter's ``.grad`` reference.
    ``seed`` seeds the global generator inside the block (reproducible dropout masks).

    Args:
        model: the model whose state is restored.
        train: the mode to run the block in (None: keep each module's mode).
        seed: seed torch's global generator inside the block.
        params: restore parameter values.
        buffers: restore buffer values.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).eval()
        >>> before = model[0].weight.clone()
        >>> with preserved_state(model, train=True, seed=0):
        ...     _ = nn.init.zeros_(model[0].weight)
        ...     model.training
        True
        >>> torch.equal(model[0].weight, before), model.training
        (True, False)
    """
    modes = [(m, m.training) for m in model.modules()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    plist = list(model.parameters())
    grads = [p.grad for p in plist]
    with torch.no_grad():
        saved_p = [(p, p.detach().clone()) for p in plist] if params else []
        saved_b = [(b, b.detach().clone()) for b in model.buffers()] if buffers else []
    try:
        if train is not None:
            model.train(train)
        if seed is not None:
            torch.random.default_generator.manual_seed(seed)
            if cuda_rng is not None:
                torch.cuda.manual_seed_all(seed)
        yield
    finally:
        with torch.no_grad():
            for t, v in saved_p + saved_b:
                if not torch.equal(t, v):  # an untouched tensor keeps its version counter,
                    t.copy_(v)  # so graphs the caller built before stay usable
        for p, g in zip(plist, grads, strict=True):
            p.grad = g
        for m, mode in modes:
            m.training = mode
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def prepare_inputs(inputs: Any, requires_grad: bool) -> tuple[tuple, dict, list[Tensor]]:
    """(args, kwargs, leaves) for ``model(*args, **kwargs)``.

    A tensor is one positional argument, a tuple/list the positional arguments, a dict the
    keyword arguments. Floating tensors are passed as clones of fresh leaves (so the caller's
    tensors are never modified by an in-place first layer, and in-place ops stay legal).

    Args:
        inputs: a tensor, a tuple/list or a dict.
        requires_grad: make the floating leaves require grad (to reach dL/d input).

    Returns:
        ``(args, kwargs, leaves)``.

    Example:
        >>> x = torch.ones(2)
        >>> args, kwargs, leaves = prepare_inputs(x, True)
        >>> args[0] is x, leaves[0].requires_grad, kwargs
        (False, True, {})
    """
    leaves: list[Tensor] = []

    def conv(v: Any) -> Any:
        if isinstance(v, Tensor) and v.is_floating_point():
            leaf = v.detach().requires_grad_(requires_grad)
            leaves.append(leaf)
            return leaf.clone()
        return v

    if isinstance(inputs, dict):
        return (), {k: conv(v) for k, v in inputs.items()}, leaves
    seq = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    return tuple(conv(v) for v in seq), {}, leaves


def select_layers(
    model: nn.Module,
    layers: Callable[[str, nn.Module], bool] | Iterable[str] | None,
    kind: Callable[[nn.Module], bool] = is_layer,
) -> dict[nn.Module, str]:
    """{module: qualified name ("(root)" for the model)} of the modules of ``kind`` kept by
    ``layers``: None (all), qualified names (ValueError for a name not in the model) or a
    predicate ``(name, module) -> bool``.

    Args:
        model: the model.
        layers: None, qualified module names, or a predicate.
        kind: which modules qualify (default: :func:`is_layer`).

    Returns:
        The selected modules and their names, in ``named_modules`` order.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> list(select_layers(model, None).values()), list(select_layers(model, ["1"]).values())
        (['0', '1'], ['1'])
    """
    names = {m: n for n, m in model.named_modules()}
    if layers is not None and not callable(layers):
        wanted = set(layers)
        if wanted - set(names.values()):
            raise ValueError(f"no module(s) named {sorted(wanted - set(names.values()))}")
        layers = lambda n, m: n in wanted  # noqa: E731
    keep = layers or (lambda n, m: True)
    return {m: n or "(root)" for m, n in names.items() if kind(m) and keep(n, m)}


class Recorder:
    """Registers the hooks on ``modules`` and builds one :class:`LayerRecord` per call.

    A context manager: the hooks are removed on exit. Forward statistics are recorded by the
    hooks; :func:`diagnose` adds the gradients.

    Args:
        modules: {module: qualified name} to record (:func:`select_layers`).
        thresholds: the saturation thresholds.
        bins: histogram bins per output (0: none).
        weight_modules: the modules whose records are weight layers (``has_weight``);
            None: those owning a >= 2-D parameter or a parametrization.

    Example:
        >>> from initlab.diagnostics.records import Thresholds
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        >>> with Recorder(select_layers(model, None), Thresholds()) as rec:
        ...     _ = model(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)))
        >>> [(r.label, r.kind, r.output_shape) for r in rec.records]
        [('0', 'Linear', (5, 3)), ('1', 'ReLU', (5, 3))]
    """

    def __init__(
        self,
        modules: dict[nn.Module, str],
        thresholds: Thresholds,
        bins: int = 0,
        weight_modules: set[nn.Module] | None = None,
    ):
        self.modules, self.t, self.bins = modules, thresholds, bins
        self.weight_modules = weight_modules
        self.records: list[LayerRecord] = []
        self.first: dict[nn.Module, LayerRecord] = {}
        self._open: dict[nn.Module, list[LayerRecord]] = {}
        self._calls: dict[nn.Module, int] = {}
        self._layout: int | None = None  # 1: channels first, -1: channels last (last seen)
        self.handles: list[Any] = []

    def __enter__(self) -> Recorder:
        for m in self.modules:
            self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _pre(self, m: nn.Module, args: tuple, kwargs: dict) -> None:
        call = self._calls.get(m, 0)
        self._calls[m] = call + 1
        if self.weight_modules is not None:
            has_w = m in self.weight_modules
        else:
            has_w = any(p.ndim >= 2 for p in m.parameters(recurse=False)) or (
                torch.nn.utils.parametrize.is_parametrized(m)
            )
        r = LayerRecord(len(self.records), self.modules[m], type(m).__name__, call,
                        "activation" if is_activation(m) else "layer", has_w)  # fmt: skip
        x = first_tensor(args)
        x = first_tensor(kwargs) if x is None else x
        if x is not None and x.is_floating_point():
            r.input_shape = tuple(x.shape)
            r.input_mean, r.input_std = moments(x)
        self.records.append(r)
        self.first.setdefault(m, r)
        self._open.setdefault(m, []).append(r)

    def _unit_dim(self, m: nn.Module, y: Tensor) -> int | None:
        if isinstance(m, _CHANNELS_FIRST):
            self._layout = 1
        elif isinstance(m, _CHANNELS_LAST):
            self._layout = -1
        if y.ndim < 2:
            return None
        if y.ndim == 2:
            return 1
        layout = self._layout or (1 if y.ndim >= 4 else -1)
        return 1 if layout == 1 else y.ndim - 1

    def _post(self, m: nn.Module, args: tuple, out: Any) -> None:
        r = self._open[m].pop()
        y = first_tensor(out)
        if y is None or not y.is_floating_point():
            return
        r.output_shape = tuple(y.shape)
        r.output_mean, r.output_std = moments(y)
        r.unit_dim = self._unit_dim(m, y)
        if isinstance(m, RELU_FAMILY):
            r.dead_fraction = dead_fraction(y, r.unit_dim)
        elif isinstance(m, SATURATING):
            r.saturated_fraction = saturated_fraction(m, y, r.unit_dim, self.t)
        if self.bins:
            r.histogram = histogram(y, self.bins, drop_zeros=isinstance(m, RELU_FAMILY))
        if y.requires_grad:
            y.register_hook(self._grad_hook(r))

    def _grad_hook(self, r: LayerRecord) -> Callable[[Tensor], None]:
        def hook(g: Tensor) -> None:
            r.grad_output_std = moments(g)[1]
            if self.bins:
                r.grad_histogram = histogram(g, self.bins)

        return hook


def default_loss(
    output: Tensor, targets: Tensor | None, loss_fn: Callable[..., Tensor] | None
) -> tuple[Tensor, str]:
    """The loss diagnose differentiates, and its name.

    ``loss_fn(output, targets)`` (or ``loss_fn(output)`` without targets) when given; else
    cross-entropy for integer targets, MSE for floating targets, and without targets
    ``L = 0.5 * sum(output**2) / output.shape[0]`` (so dL/d output = output / batch: the
    backward pass carries the forward signal back, a label-free probe of gradient flow).

    Args:
        output: the model's output.
        targets: the targets, or None.
        loss_fn: ``loss_fn(output, targets)`` or ``loss_fn(output)``, or None for the defaults.

    Returns:
        ``(loss, name)``, name one of ``"custom"``, ``"cross_entropy"``, ``"mse"``,
        ``"half_sum_squares"``.

    Example:
        >>> out = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> default_loss(out, None, None)  # 0.5 * (1 + 4 + 9 + 16) / 2
        (tensor(7.5000), 'half_sum_squares')
        >>> default_loss(out, torch.tensor([1, 0]), None)[1]
        'cross_entropy'
    """
    if loss_fn is not None:
        return (loss_fn(output, targets) if targets is not None else loss_fn(output)), "custom"
    if targets is None:
        batch = output.shape[0] if output.ndim else 1
        return 0.5 * output.pow(2).sum() / batch, "half_sum_squares"
    if not targets.is_floating_point():
        return F.cross_entropy(output, targets), "cross_entropy"
    return F.mse_loss(output, targets), "mse"


def _weight_stats(
    module: nn.Module,
    prefix: str,
    grads: dict[int, Tensor | None],
    svd: bool,
    recorded: set[nn.Module],
    fans: dict[int, Fans],
    seen: dict[int, str],
) -> dict[str, WeightStats]:
    """Stats of the module's own parameters and of those of descendants that were not recorded
    (MultiheadAttention's ``out_proj`` is never called as a module: its weight is read).
    ``fans``: the registry fans by parameter id (blocks); ``seen``: qualified names of the
    parameters already recorded (a tied parameter met again gets ``tied_to``, no repeat)."""

    named: list[tuple[str, Tensor]] = []
    parametrized = torch.nn.utils.parametrize.is_parametrized(module)
    for sub_prefix, sub in module.named_modules():
        if (sub is not module and sub in recorded) or (parametrized and sub_prefix):
            continue
        pre = sub_prefix + "." if sub_prefix else ""
        named += [(pre + n, p) for n, p in sub.named_parameters(recurse=False)]
    if parametrized:
        named += [(n, getattr(module, n)) for n in module.parametrizations]
    out = {}
    for n, p in named:
        ws = WeightStats(n, tuple(p.shape), moments(p)[1])
        qual = f"{prefix}.{n}" if prefix and prefix != "(root)" else n
        if id(p) in seen:
            ws.tied_to = seen[id(p)]
            out[n] = ws
            continue
        seen[id(p)] = qual
        g = grads.get(id(p))
        ws.grad_std = None if g is None else moments(g)[1]
        if svd and p.ndim >= 2 and p.numel() > 0:
            ws.sv = sv_summary(p)
            f = fans.get(id(p))
            for b in f.blocks if f is not None and len(f.blocks) > 1 else ():
                ws.blocks[b.name] = sv_summary(p.detach().narrow(b.dim, b.start, b.size))
        out[n] = ws
    return out


def diagnose(
    model: nn.Module,
    inputs: Any,
    targets: Tensor | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    *,
    thresholds: Thresholds | None = None,
    train: bool | None = None,
    seed: int | None = None,
    layers: Callable[[str, nn.Module], bool] | Iterable[str] | None = None,
    bins: int = 0,
    singular_values: bool = True,
) -> Diagnosis:
    """Forward and backward one batch through ``model`` and record every layer call.

    Per call (:class:`~initlab.diagnostics.records.LayerRecord`): input and output mean/std,
    dead-unit fraction (ReLU family), saturated-unit fraction (tanh/sigmoid...), std of
    dL/d(output); per parameter (call 0): value std, std of dL/dW, largest/smallest singular
    value and condition number (per packed block too, from the layer registry's blocks: GPT-2's
    ``c_attn`` q/k/v, timm's ``qkv``); a tied parameter is measured once, where it is first
    recorded (later owners list it with ``tied_to`` naming that place). The weight layers
    (``has_weight``) are the modules owning a parameter of role ``weight`` in the layer
    registry (not Embeddings), a >= 2-D parameter of a layer the registry does not know, or a
    parametrization. The
    :class:`Diagnosis` flags forward
    and backward vanishing/exploding from the weight layers' std ratios (see
    :mod:`initlab.diagnostics.records`, Glorot & Bengio 2010, He et al. 2015).

    Args:
        model: any ``nn.Module``; its output (or the first tensor of a tuple output) is fed
            to the loss.
        inputs: a tensor (one positional argument), a tuple/list (positional arguments) or a
            dict (keyword arguments). They are cloned, never modified.
        targets, loss_fn: the loss (see :func:`default_loss`: CE for integer targets, MSE for
            float targets, ``0.5 * sum(out**2) / batch`` without targets).
        thresholds: flag thresholds (:class:`Thresholds`).
        train: run in train (True) or eval (False) mode; None (default) keeps each module's
            current mode. The modes are restored afterwards either way.
        seed: seed torch's global generator for the run (dropout masks); restored afterwards.
        layers: restrict recording to these qualified module names, or a predicate
            ``(name, module) -> bool``.
        bins: when > 0, store histograms of each output and output gradient with this many
            bins (for :func:`~initlab.diagnostics.plots.plot_histograms`).
        singular_values: compute the singular-value summaries (an SVD per weight).

    The model is left exactly as it was: parameter values, ``.grad`` (never written: the
    gradients come from ``torch.autograd.grad``), buffers, training flags, torch's global RNG
    state, and no hooks remain, even if the forward raises.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> d = diagnose(model, x, bins=20)
        >>> [r.label for r in d.weight_records()], d.vanishing
        (['0', '2', '4'], {'forward': False, 'backward': False})
        >>> [round(s, 2) for s in d.series("output_std")]  # He init: about sqrt(2) at every depth
        [1.41, 1.43, 1.33]
    """
    th = thresholds or Thresholds()
    modules = select_layers(model, layers)
    known = weight_params(model, roles=None)
    fans = {id(w.tensor): w.fans for w in known if w.tied_to is None}
    names = dict(model.named_modules())
    weight_modules = {w.module for w in known if w.role == "weight"}
    weight_modules |= {names[q.rpartition(".")[0]] for q, _ in unknown_params(model)}
    weight_modules |= {m for m in modules if torch.nn.utils.parametrize.is_parametrized(m)}
    rec = Recorder(modules, th, bins, weight_modules)
    with preserved_state(model, train=train, seed=seed), torch.enable_grad(), rec:
        args, kwargs, leaves = prepare_inputs(inputs, requires_grad=True)
        out = first_tensor(model(*args, **kwargs))
        loss_val, loss_name, grads = None, "", {}
        params = {id(p): p for m in rec.first for p in m.parameters() if p.requires_grad}
        if out is not None and out.is_floating_point():
            loss, loss_name = default_loss(out, targets, loss_fn)
            loss_val = float(loss.detach())
            wrt = leaves + list(params.values())
            if loss.requires_grad and wrt:
                gs = torch.autograd.grad(loss, wrt, allow_unused=True)
                grads = {id(p): g for p, g in zip(wrt, gs, strict=True)}
        with torch.no_grad():
            seen: dict[int, str] = {}
            for m, r in rec.first.items():
                r.weights = _weight_stats(
                    m, r.name, grads, singular_values, set(rec.first), fans, seen
                )
        training = model.training
    return Diagnosis(rec.records, loss_val, loss_name, training, th)
