"""Stacked networks: R runs of one architecture computed as one network over a run dimension.

For the layer types of the lab's zoo, R copies of a network with different parameters need no
``vmap``: each layer has a batched form that does the R runs' work in one kernel.

============================  ==================================================================
layer                         stacked form
============================  ==================================================================
``Linear``                    ``baddbmm``: ``y[r] = x[r] @ W[r]^T + b[r]`` over ``x[R, B, in]``
``Conv2d``                    one grouped convolution, ``groups = R * groups``, over the runs'
                              channels packed side by side: ``x[B, R*C, H, W]``
``BatchNorm1d/2d``            per channel of the packed ``[B, R*C, ...]``: each run's channels
                              are normalised over its own batch; running statistics are updated
                              in place in the run's slice of the stacked buffers
pools, activations, dropout   element-wise or per channel: applied to the packed tensor as is
``Flatten``, ``Unflatten``    a view (and one transpose between the two layouts)
``Sequential``,               their children, in order; ``x + f(x)`` for
``ResidualBlock``             :class:`~initlab.zoo.ResidualBlock`
============================  ==================================================================

Activations travel in one of three layouts: ``"runs"`` ``[R, B, ...]`` (what ``Linear`` takes),
``"packed"`` ``[B, R*C, ...]`` (what convolutions, BatchNorm and pools take) and ``"shared"``
``[B, ...]``: one input for all runs (evaluation), until the first layer with parameters, where
``Linear`` and ``Conv2d`` use one ordinary GEMM/convolution with the R weights side by side.

Run r's numbers are those of the plain module up to the summation order of the batched kernels
(bmm versus addmm, grouped versus single convolution): relative differences of ~1e-6 per step.
A module is stacked only when every submodule is of one of the exact types above (a subclass may
change ``forward``); :func:`stack_problem` says why not otherwise, and the trainer then uses
``torch.func.vmap``.

>>> import torch
>>> from torch import nn
>>> models = [nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)) for _ in range(5)]
>>> net = StackedNet(models)
>>> x = torch.randn(5, 8, 4)  # a batch of 8 per run
>>> torch.allclose(net.logits(x)[2], models[2](x[2]), atol=1e-6)
True
>>> net.logits_shared(x[0]).shape  # one batch for all runs
torch.Size([5, 8, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import ResidualBlock

__all__ = ["StackedNet", "stack_problem"]

#: layers applied to any layout as they are (element-wise, no parameters); exact types only
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.CELU,
    nn.LeakyReLU,
    nn.SELU,
    nn.Sigmoid,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Identity,
)
#: per-channel 2-d pools: applied to the packed ``[B, R*C, H, W]`` as they are
POOLS: tuple[type[nn.Module], ...] = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)

# (x, layout) -> (x, layout); layout is "runs", "packed" or "shared"
Act = tuple[Tensor, str]
Op = Callable[[Act], Act]


class StackProblem(Exception):
    """A module the stacked form does not cover (the message says which and why)."""


def stack_problem(model: nn.Module) -> str | None:
    """Why ``model`` has no stacked form (one line), or None when it has one.

    >>> from torch import nn
    >>> stack_problem(nn.Sequential(nn.Linear(4, 3), nn.Tanh())) is None
    True
    >>> stack_problem(nn.LSTM(4, 3))
    'LSTM has no stacked form'
    """
    try:
        _compile(model, "", _Probe())
    except StackProblem as e:
        return str(e)
    return None


class _Probe:
    """Stands in for :class:`StackedNet` while compiling only to check coverage."""

    def __init__(self) -> None:
        self.size, self.training = 1, True
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}


class StackedNet:
    """R models of one architecture as stacked parameters ``[R, ...]`` and one batched forward.

    Args:
        models: the R models (same architecture, every submodule of a stacked type).

    Attributes:
        params: ``name -> [R, *shape]`` leaf tensors (requires grad), one per parameter;
            a ``Linear`` weight is stored transposed, ``[R, in, out]``.
        buffers: ``name -> [R, *shape]`` (BatchNorm running statistics).
        size: R.

    Raises:
        ValueError: no models, or a model the stacked form does not cover
            (:func:`stack_problem`).
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        models = list(models)
        if not models:
            raise ValueError("StackedNet needs at least one model")
        problem = stack_problem(models[0])
        if problem is not None:
            raise ValueError(f"no stacked form: {problem}")
        self.size = len(models)
        self.training = True
        # Linear weights are stored transposed, [R, in, out], contiguous: the forward's mat2
        # as it is, and the weight gradient x^T @ dy comes out in that layout (no copies in
        # autograd or in the fused optimizer, which wants contiguous tensors).
        transposed = {
            f"{name}.weight" for name, m in models[0].named_modules() if type(m) is nn.Linear
        }
        with torch.no_grad():
            self.params = {}
            for name, p in models[0].named_parameters():
                t = torch.stack([m.get_parameter(name) for m in models])
                if name in transposed:
                    t = t.transpose(1, 2).contiguous()
                self.params[name] = t.requires_grad_(p.requires_grad)
            self.buffers = {
                name: torch.stack([m.get_buffer(name) for m in models])
                for name, _ in models[0].named_buffers()
            }
        self._transposed = transposed
        self._forward = _compile(models[0], "", self)

    def run_state(self, r: int) -> dict[str, Tensor]:
        """Run ``r``'s parameters and buffers in the plain module's layout (detached views):
        ``model.load_state_dict(net.run_state(r))`` gives the run's model."""
        state = {name: self.module_layout(name, p[r]).detach() for name, p in self.params.items()}
        return state | {name: b[r] for name, b in self.buffers.items()}

    def module_layout(self, name: str, value: Tensor) -> Tensor:
        """One run's slice of parameter ``name`` (or of its gradient or optimizer state) in
        the plain module's layout (a view)."""
        return value.T if name in self._transposed else value

    def train(self, mode: bool = True) -> StackedNet:
        """Training mode (BatchNorm batch statistics, dropout) or, ``mode=False``, eval."""
        self.training = mode
        return self

    def eval(self) -> StackedNet:
        """Eval mode."""
        return self.train(False)

    def logits(self, x: Tensor) -> Tensor:
        """Outputs ``[R, B, ...]`` of run r on its own batch ``x[r]`` (``x: [R, B, ...]``)."""
        return _to_runs(self._forward((x, "runs")), self.size)

    def logits_shared(self, x: Tensor) -> Tensor:
        """Outputs ``[R, B, ...]`` of every run on one batch ``x: [B, ...]``."""
        return _to_runs(self._forward((x, "shared")), self.size)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-run mean cross-entropy ``[R]`` of run r on ``(x[r], y[r])``.

        ``x: [R, B, ...]``, ``y: [R, B]`` class indices.
        """
        out = self.logits(x)
        losses = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
        return losses.view(self.size, -1).mean(1)


# --------------------------------------------------------------------------- layouts


def _to_runs(act: Act, size: int) -> Tensor:
    x, layout = act
    if layout == "runs":
        return x
    if layout == "shared":
        return x.unsqueeze(0).expand(size, *x.shape)
    b, rc = x.shape[:2]
    return x.view(b, size, rc // size, *x.shape[2:]).transpose(0, 1)


def _to_packed(act: Act, size: int) -> Tensor:
    x, layout = act
    if layout == "packed":
        return x
    if layout == "shared":
        x = x.unsqueeze(1).expand(x.shape[0], size, *x.shape[1:])
    else:
        x = x.transpose(0, 1)
    return x.reshape(x.shape[0], -1, *x.shape[3:])


# --------------------------------------------------------------------------- compilation


def _compile(module: nn.Module, prefix: str, net: StackedNet | _Probe) -> Op:
    """The stacked forward of ``module`` (parameters named ``prefix + name`` in ``net``)."""
    kind = type(module)
    if kind is nn.Sequential:
        ops = [_compile(child, f"{prefix}{name}.", net) for name, child in module.named_children()]

        def sequential(act: Act) -> Act:
            for op in ops:
                act = op(act)
            return act

        return sequential
    if kind is ResidualBlock:
        inner = [_compile(getattr(module, k), f"{prefix}{k}.", net) for k in ("fc1", "act", "fc2")]

        def residual(act: Act) -> Act:
            x = _to_runs(act, net.size)
            out: Act = (x, "runs")
            for op in inner:
                out = op(out)
            return x + _to_runs(out, net.size), "runs"

        return residual
    if kind is nn.Linear:
        return _linear(module, prefix, net)
    if kind is nn.Conv2d:
        return _conv2d(module, prefix, net)
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        return _batchnorm(module, prefix, net)
    if kind in ELEMENTWISE:
        if getattr(module, "inplace", False):
            raise StackProblem(f"{kind.__name__}(inplace=True) at {prefix or 'the top'}")
        return lambda act: (module(act[0]), act[1])
    if kind is nn.Dropout:
        p = module.p
        return lambda act: (F.dropout(act[0], p, net.training), act[1])
    if kind in POOLS:
        return lambda act: (module(_to_packed(act, net.size)), "packed")
    if kind is nn.Flatten:
        if module.start_dim != 1 or module.end_dim != -1:
            raise StackProblem("Flatten other than Flatten(1, -1) has no stacked form")
        return lambda act: _flatten(act, net.size)
    if kind is nn.Unflatten:
        if module.dim != 1:
            raise StackProblem("Unflatten other than at dim 1 has no stacked form")
        sizes = tuple(module.unflattened_size)

        def unflatten(act: Act) -> Act:
            if act[1] == "shared":
                return act[0].unflatten(1, sizes), "shared"
            return _to_runs(act, net.size).unflatten(2, sizes), "runs"

        return unflatten
    raise StackProblem(f"{kind.__name__} has no stacked form")


def _flatten(act: Act, size: int) -> Act:
    x, layout = act
    if layout == "shared":
        return x.flatten(1), "shared"
    if layout == "runs":
        return x.flatten(2), "runs"
    return x.reshape(x.shape[0], size, -1).transpose(0, 1), "runs"


def _linear(module: nn.Linear, prefix: str, net: StackedNet | _Probe) -> Op:
    wname, bname = f"{prefix}weight", f"{prefix}bias" if module.bias is not None else None

    def linear(act: Act) -> Act:
        wt = net.params[wname]  # [R, in, out]
        b = net.params[bname] if bname is not None else None
        size, in_f, out_f = wt.shape
        if act[1] == "shared":  # one GEMM with the R weights side by side: [B, R*out]
            x = act[0]
            y = x.reshape(-1, in_f) @ wt.transpose(0, 1).reshape(in_f, size * out_f)
            y = y.view(-1, size, out_f).transpose(0, 1)
            y = y if b is None else y + b.unsqueeze(1)
            return y.reshape(size, *x.shape[:-1], out_f), "runs"
        x = _to_runs(act, size)
        lead = x.shape[1:-1]
        x3 = x.reshape(size, -1, in_f)
        y = torch.bmm(x3, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x3, wt)
        return y.view(size, *lead, out_f), "runs"

    return linear


def _conv2d(module: nn.Conv2d, prefix: str, net: StackedNet | _Probe) -> Op:
    if module.padding_mode != "zeros":
        raise StackProblem(f"Conv2d(padding_mode={module.padding_mode!r}) has no stacked form")
    wname, bname = f"{prefix}weight", f"{prefix}bias" if module.bias is not None else None
    stride, padding, dilation = module.stride, module.padding, module.dilation
    groups = module.groups

    def conv(act: Act) -> Act:
        w = net.params[wname]  # [R, O, C/g, kh, kw]
        size = w.shape[0]
        w = w.reshape(-1, *w.shape[2:])
        b = net.params[bname].reshape(-1) if bname is not None else None
        if act[1] == "shared" and groups == 1:  # the R filters side by side: [B, R*O, H, W]
            return F.conv2d(act[0], w, b, stride, padding, dilation, 1), "packed"
        x = _to_packed(act, size)
        return F.conv2d(x, w, b, stride, padding, dilation, groups * size), "packed"

    return conv


def _batchnorm(module: nn.modules.batchnorm._BatchNorm, prefix: str,
               net: StackedNet | _Probe) -> Op:  # fmt: skip
    if module.momentum is None and module.track_running_stats:
        raise StackProblem("BatchNorm with momentum=None has no stacked form")
    names = {k: f"{prefix}{k}" for k in ("weight", "bias")} if module.affine else {}
    stats = module.track_running_stats
    momentum, eps = module.momentum, module.eps

    def batchnorm(act: Act) -> Act:
        x = _to_packed(act, net.size)
        w = net.params[names["weight"]].reshape(-1) if names else None
        b = net.params[names["bias"]].reshape(-1) if names else None
        mean = net.buffers[f"{prefix}running_mean"].view(-1) if stats else None
        var = net.buffers[f"{prefix}running_var"].view(-1) if stats else None
        batch_stats = net.training or not stats
        if net.training and stats:
            net.buffers[f"{prefix}num_batches_tracked"].add_(1)
        # running stats are views of the stacked buffers: updated in place, per run's slice
        out = F.batch_norm(x, mean, var, w, b, batch_stats, momentum, eps)
        return out, "packed"

    return batchnorm
