"""Layer-aware fans: what each ``torch.nn`` layer actually connects.

:func:`compute_fans` reads a parameter's **logical** shape (for a ``DTensor`` its global shape;
meta tensors work, only shapes are read) and the owning layer's hyper-parameters, and returns a
:class:`~initlab.fans.Fans`. Definitions, with ``fan_in`` = inputs summed into one output unit
and ``fan_out`` = output units one input unit feeds (per block for packed parameters):

* **Linear** ``[out, in]``: ``fan_in = in``, ``fan_out = out``.
* **Bilinear** ``[out, in1, in2]``, ``y_k = sum_ij x1_i W_kij x2_j``: one output sums
  ``in1*in2`` products, so ``fan_in = in1*in2``; the gradient of one ``x1_i`` sums
  ``out*in2`` terms, so ``fan_out = out*in2`` (backward w.r.t. input1; equals torch's shape
  rule). attrs: ``fan_out_input2 = out*in1`` (w.r.t. input2) and ``fan_out_outer = out`` (the
  Linear-on-``x1 (x) x2`` view).
* **Conv** ``[out, in/g, *k]``: ``fan_in = (in/g)*prod(k)``, ``fan_out = (out/g)*prod(k)``.
  ``Conv2d(32, 32, 3, groups=32)``: 9 and 9 (torch's rule says 9 and 288).
* **ConvTranspose** ``[in, out/g, *k]``: each input position scatters into ``(out/g)*prod(k)``
  outputs, so ``fan_out = (out/g)*prod(k)``; ``fan_in = (in/g)*prod(k)``.
  ``ConvTranspose2d(16, 32, 3, groups=4)``: 36 and 72 (torch's rule says 72 and 144).
  **Stride is ignored** in both conv fans (as He et al. 2015 and every framework do). With
  stride ``s`` an output of a transposed conv receives ``prod(k)/prod(s)`` taps on average, and
  an input of a conv feeds ``prod(k)/prod(s)`` positions on average: the stride-adjusted values
  are in attrs as ``fan_in_strided`` (ConvTranspose) and ``fan_out_strided`` (Conv), floats.
* **Embedding / EmbeddingBag** ``[num, dim]``: the Linear-equivalent view (a one-hot input of
  size ``num`` times the table): ``fan_in = num_embeddings``, ``fan_out = embedding_dim``.
  torch's shape rule reads the transpose (``dim``, ``num``). Note that a one-hot input has one
  non-zero term, so an output's variance is ``Var(W)``; Flax's default ``nn.Embed`` init
  (``variance_scaling(1, "fan_in", "normal", out_axis=0)``) works out to ``1/embedding_dim``,
  i.e. ``mode="fan_out"`` here. attrs: ``padding_idx``, ``max_norm``.
* **MultiheadAttention**: ``in_proj_weight [3E, E]`` has fans ``(E, E)`` and blocks q, k, v
  along dim 0; ``in_proj_bias`` the same blocks. Separate ``q/k/v_proj_weight``
  (``kdim``/``vdim`` != ``E``): ``(E, E)``, ``(kdim, E)``, ``(vdim, E)``; then ``in_proj_bias``
  reports the q block's fans, each block carries its own ``fan_in``/``fan_out`` and
  ``attrs["block_fans"]`` lists them. ``bias_k``/``bias_v``
  take the k/v projection's fans. ``out_proj`` is a Linear (pass ``"out_proj.weight"``).
* **RNN / LSTM / GRU** (and cells): ``weight_ih_l{k}`` ``[G*H, in_k]`` -> ``(in_k, H)``,
  ``weight_hh_l{k}`` ``[G*H, R]`` -> ``(R, H)`` (``R = proj_size or H``), ``weight_hr_l{k}``
  ``[P, H]`` -> ``(H, P)``; ``in_k`` is ``input_size`` for layer 0 else ``R*directions``. LSTM
  has blocks i, f, g, o, GRU r, z, n, plain RNN none. Biases share their weight's fans/blocks.
* **Norm layers** (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm) and **PReLU**:
  element-wise scale/shift, ``fan_in = fan_out = 1``.
* A **bias** always gets its weight's fans and blocks. Unknown layers: explicit
  ``in_axis``/``out_axis``/``batch_axis``, else torch's shape rule with ``rule="shape-fallback"``.

``torch_fan_in``/``torch_fan_out`` always hold torch's shape rule applied to the layer's weight
(for a bias: its weight; for MHA's ``bias_k``/``bias_v`` and separate projections: the tensor
itself), which is what the layer's ``reset_parameters`` uses.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from .core import Block, Fans, fans_from_axes, fans_from_shape, torch_fans

__all__ = ["compute_fans", "explain_fans"]

CONVENTIONS = ("layer", "torch")
LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")
_NORMS: tuple[type, ...] = tuple(
    c
    for c in (
        nn.modules.batchnorm._NormBase,
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),
        nn.LocalResponseNorm,
    )
    if c is not None
)
_RNN_NAME = re.compile(r"(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?")


def compute_fans(
    module: nn.Module,
    param_name: str,
    convention: str = "layer",
    *,
    in_axis: int | Sequence[int] | None = None,
    out_axis: int | Sequence[int] | None = None,
    batch_axis: int | Sequence[int] = (),
) -> Fans:
    """Fans of ``module``'s parameter ``param_name`` (see the module docstring for definitions).

    Args:
        module: the layer owning the parameter, or any ancestor when ``param_name`` is a dotted
            path relative to it (``"out_proj.weight"``, ``"encoder.0.weight"``).
        param_name: the parameter's name (``"weight"``, ``"in_proj_weight"``,
            ``"weight_hh_l1_reverse"``) or dotted path.
        convention: ``"layer"`` (default): true fans of what the layer connects, with blocks for
            packed parameters. ``"torch"``: exactly ``torch.nn.init._calculate_fan_in_and_fan_out``
            of the parameter (shape only, no blocks; ValueError below 2 dimensions).
        in_axis, out_axis, batch_axis: explicit axes (JAX ``variance_scaling`` semantics, see
            :func:`~initlab.fans.fans_from_axes`); they override the layer rule. A missing
            ``in_axis``/``out_axis`` defaults to -2/-1.

    Raises:
        TypeError: ``module`` is not an ``nn.Module``.
        ValueError: unknown parameter (the message lists the valid names), uninitialised lazy
            parameter, 1-D parameter under the torch convention or of an unknown layer.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"compute_fans needs an nn.Module, got {type(module).__name__}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown fan convention {convention!r}; use 'layer' or 'torch'")
    owner, name, parent = _resolve(module, param_name)
    tensor = _get_tensor(owner, name, module, param_name)
    shape = tuple(int(s) for s in tensor.shape)  # DTensor: the global (logical) shape
    layer = type(owner).__name__
    axes_given = in_axis is not None or out_axis is not None or _nonempty(batch_axis)
    if convention == "torch":
        if axes_given:
            raise ValueError("in_axis/out_axis/batch_axis apply to convention='layer' only")
        if len(shape) < 2:
            raise ValueError(
                f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions: "
                f"{layer}.{name} has shape {shape} (torch's shape rule); use convention='layer' "
                f"or pass explicit fans"
            )
        return dataclasses.replace(fans_from_shape(shape), layer=layer, param=name)
    if axes_given:
        f = fans_from_axes(
            shape,
            -2 if in_axis is None else in_axis,
            -1 if out_axis is None else out_axis,
            batch_axis if batch_axis is not None else (),
        )
        tf = torch_fans(shape) if len(shape) >= 2 else (None, None)
        return dataclasses.replace(
            f, layer=layer, param=name, torch_fan_in=tf[0], torch_fan_out=tf[1]
        )
    fans = _layer_fans(owner, name, shape)
    if fans is None:
        fans = _fallback(owner, name, shape, param_name)
    if isinstance(parent, nn.MultiheadAttention) and owner is parent.out_proj and name == "bias":
        # MultiheadAttention._reset_parameters zeroes out_proj.bias after the Linear drew it
        fans = _with_attrs(fans, torch_init="zeros")
    return dataclasses.replace(fans, layer=layer, param=name)


def explain_fans(fans: Fans) -> str:
    """A one- or two-line human-readable description of ``fans``."""
    where = f"{fans.layer or '?'}.{fans.param or '?'}"
    line = f"{where}: fan_in={fans.fan_in}, fan_out={fans.fan_out} (rule {fans.rule}"
    if fans.torch_fan_in is not None and (fans.torch_fan_in, fans.torch_fan_out) != (
        fans.fan_in,
        fans.fan_out,
    ):
        line += f"; torch's shape rule: {fans.torch_fan_in}/{fans.torch_fan_out}"
    line += ")"
    if fans.blocks:
        names = ", ".join(f"{b.name}[{b.start}:{b.stop}]" for b in fans.blocks)
        line += f"\n  {len(fans.blocks)} packed blocks along dim {fans.blocks[0].dim}: {names}"
    return line


# -- parameter lookup ---------------------------------------------------------------------
def _nonempty(axes: Any) -> bool:
    return axes is not None and not (isinstance(axes, (tuple, list)) and len(axes) == 0)


def _names(module: nn.Module, limit: int = 40) -> str:
    names = [n for n, _ in module.named_parameters()]
    if len(names) > limit:
        names = [*names[:limit], f"... ({len(names) - limit} more)"]
    return ", ".join(names) or "(none)"


def _resolve(module: nn.Module, path: str) -> tuple[nn.Module, str, nn.Module | None]:
    if not isinstance(path, str) or not path:
        raise TypeError(f"param_name must be a non-empty string, got {path!r}")
    *mods, name = path.split(".")
    owner, parent = module, None
    for i, part in enumerate(mods):
        child = owner._modules.get(part)
        if child is None:
            raise ValueError(
                f"{type(module).__name__} has no submodule {'.'.join(mods[: i + 1])!r} "
                f"(from {path!r}); its parameters are: {_names(module)}"
            )
        owner, parent = child, owner
    return owner, name, parent


def _get_tensor(owner: nn.Module, name: str, root: nn.Module, path: str) -> Tensor:
    if name in owner._parameters and owner._parameters[name] is None:
        raise ValueError(
            f"{type(owner).__name__}.{name} is None (the layer was built without it, "
            f"e.g. bias=False); its parameters are: {_names(owner)}"
        )
    t = getattr(owner, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(
            f"{type(root).__name__} has no parameter {path!r}; its parameters are: {_names(root)}"
        )
    if is_lazy(t):
        raise ValueError(
            f"{type(owner).__name__}.{name} is an uninitialised lazy parameter (shape unknown); "
            f"run one forward pass (or module.initialize_parameters(input)) before computing fans"
        )
    return t


def _shape(owner: nn.Module, name: str) -> tuple[int, ...]:
    t = getattr(owner, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(f"{type(owner).__name__} has no tensor {name!r} to read fans from")
    if is_lazy(t):
        raise ValueError(
            f"{type(owner).__name__}.{name} is an uninitialised lazy parameter; run one "
            f"forward pass before computing fans"
        )
    return tuple(int(s) for s in t.shape)


# -- building Fans ------------------------------------------------------------------------
def _mk(
    fan_in: int,
    fan_out: int,
    rule: str,
    torch_shape: Sequence[int] | None,
    blocks: tuple[Block, ...] = (),
    **attrs: Any,
) -> Fans:
    tfi, tfo = torch_fans(torch_shape) if torch_shape and len(torch_shape) >= 2 else (None, None)
    return Fans(
        int(fan_in),
        int(fan_out),
        blocks=blocks,
        rule=rule,
        torch_fan_in=tfi,
        torch_fan_out=tfo,
        attrs=tuple(sorted(attrs.items())),
    )


def _with_attrs(fans: Fans, **extra: Any) -> Fans:
    return dataclasses.replace(fans, attrs=tuple(sorted({**dict(fans.attrs), **extra}.items())))


def _tile(names: Sequence[str], size: int) -> tuple[Block, ...]:
    return tuple(Block(n, i * size, (i + 1) * size) for i, n in enumerate(names))


def _layer_fans(m: nn.Module, name: str, shape: tuple[int, ...]) -> Fans | None:
    """The layer rule for ``m.name``, or None when the layer or the name is not recognised."""
    if isinstance(m, nn.Linear):
        return _linear(m, name)
    if isinstance(m, nn.Bilinear):
        return _bilinear(m, name)
    if isinstance(m, nn.modules.conv._ConvNd):
        return _conv(m, name)
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return _embedding(m, name)
    if isinstance(m, nn.MultiheadAttention):
        return _mha(m, name, shape)
    if isinstance(m, nn.RNNBase):
        return _rnn(m, name)
    if isinstance(m, nn.RNNCellBase):
        return _rnn_cell(m, name)
    if isinstance(m, _NORMS) and name in ("weight", "bias"):
        return _mk(1, 1, "norm-elementwise", None)
    if isinstance(m, nn.PReLU) and name == "weight":
        return _mk(1, 1, "prelu-elementwise", None, init=float(m.init), num_parameters=shape[0])
    return None


def _linear(m: nn.Linear, name: str) -> Fans | None:
    if name not in ("weight", "bias"):
        return None
    w = _shape(m, "weight")
    return _mk(w[1], w[0], "linear", w, in_features=w[1], out_features=w[0])


def _bilinear(m: nn.Bilinear, name: str) -> Fans | None:
    if name not in ("weight", "bias"):
        return None
    out, in1, in2 = _shape(m, "weight")
    return _mk(
        in1 * in2,
        out * in2,
        "bilinear",
        (out, in1, in2),
        in1_features=in1,
        in2_features=in2,
        out_features=out,
        fan_out_input2=out * in1,
        fan_out_outer=out,
    )


def _conv(m: nn.modules.conv._ConvNd, name: str) -> Fans | None:
    if name not in ("weight", "bias"):
        return None
    w = _shape(m, "weight")
    g = int(m.groups)
    k = math.prod(w[2:])
    s = math.prod(m.stride)
    attrs: dict[str, Any] = {
        "groups": g,
        "kernel_size": tuple(w[2:]),
        "stride": tuple(m.stride),
        "dilation": tuple(m.dilation),
        "in_channels": int(m.in_channels),
        "out_channels": int(m.out_channels),
    }
    if m.transposed:  # [in, out/g, *k]
        fi, fo = (w[0] // g) * k, w[1] * k
        return _mk(fi, fo, "conv-transpose", w, fan_in_strided=fi / s, **attrs)
    fi, fo = w[1] * k, (w[0] // g) * k  # [out, in/g, *k]
    return _mk(fi, fo, "conv", w, fan_out_strided=fo / s, **attrs)


def _embedding(m: nn.Embedding | nn.EmbeddingBag, name: str) -> Fans | None:
    if name != "weight":
        return None
    num, dim = _shape(m, "weight")
    return _mk(
        num,
        dim,
        "embedding",
        (num, dim),
        num_embeddings=num,
        embedding_dim=dim,
        padding_idx=m.padding_idx,
        max_norm=m.max_norm,
    )


def _mha(m: nn.MultiheadAttention, name: str, shape: tuple[int, ...]) -> Fans | None:
    e, kdim, vdim = int(m.embed_dim), int(m.kdim), int(m.vdim)
    packed = bool(m._qkv_same_embed_dim)
    attrs: dict[str, Any] = {
        "embed_dim": e,
        "num_heads": int(m.num_heads),
        "head_dim": int(m.head_dim),
        "kdim": kdim,
        "vdim": vdim,
        "packed": packed,
    }
    qkv = _tile(("q", "k", "v"), e)
    per_proj = {"q": (e, e), "k": (kdim, e), "v": (vdim, e)}
    if name == "in_proj_weight":
        return _mk(e, e, "mha", shape, qkv, **attrs)
    if name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
        fi, fo = per_proj[name[0]]
        return _mk(fi, fo, "mha", shape, **attrs)
    if name == "in_proj_bias":
        w = _shape(m, "in_proj_weight" if packed else "q_proj_weight")
        blocks = tuple((p, *per_proj[p]) for p in "qkv")
        if not packed:  # q, k and v blocks then have different fans: each block carries its own
            qkv = tuple(
                dataclasses.replace(b, fan_in=per_proj[b.name][0], fan_out=per_proj[b.name][1])
                for b in qkv
            )
        return _mk(e, e, "mha", w, qkv, block_fans=blocks, **attrs)
    if name in ("bias_k", "bias_v"):
        fi, fo = per_proj[name[-1]]
        return _mk(fi, fo, "mha", shape, **attrs)
    return None


def _rnn(m: nn.RNNBase, name: str) -> Fans | None:
    match = _RNN_NAME.fullmatch(name)
    if match is None:
        return None
    _, kind, layer, rev = match.groups()
    h, p = int(m.hidden_size), int(m.proj_size)
    gates = {"LSTM": LSTM_GATES, "GRU": GRU_GATES}.get(m.mode, ())
    attrs: dict[str, Any] = {
        "hidden_size": h,
        "proj_size": p,
        "input_size": int(m.input_size),
        "num_layers": int(m.num_layers),
        "bidirectional": bool(m.bidirectional),
        "layer_index": int(layer),
        "reverse": rev is not None,
        "gates": gates,
        "mode": m.mode,
    }
    if m.mode in ("RNN_TANH", "RNN_RELU"):
        attrs["nonlinearity"] = "tanh" if m.mode == "RNN_TANH" else "relu"
    w = _shape(m, f"weight_{kind}_l{layer}{rev or ''}")
    if kind == "hr":  # projection [P, H]
        return _mk(w[1], w[0], "rnn", w, **attrs)
    return _mk(w[1], h, "rnn", w, _tile(gates, h) if gates else (), **attrs)


def _rnn_cell(m: nn.RNNCellBase, name: str) -> Fans | None:
    if name not in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        return None
    h = int(m.hidden_size)
    if isinstance(m, nn.LSTMCell):
        gates: tuple[str, ...] = LSTM_GATES
    elif isinstance(m, nn.GRUCell):
        gates = GRU_GATES
    else:
        gates = ()
    attrs: dict[str, Any] = {
        "hidden_size": h,
        "proj_size": 0,
        "input_size": int(m.input_size),
        "gates": gates,
    }
    if isinstance(m, nn.RNNCell):
        attrs["nonlinearity"] = m.nonlinearity
    w = _shape(m, "weight_" + name.split("_")[1])
    return _mk(w[1], h, "rnn", w, _tile(gates, h) if gates else (), **attrs)


def _fallback(owner: nn.Module, name: str, shape: tuple[int, ...], path: str) -> Fans:
    """Unknown layer or parameter: torch's shape rule, recorded as ``rule="shape-fallback"``."""
    if len(shape) < 2 and name.startswith("bias"):
        w = getattr(owner, "weight", None)
        if isinstance(w, Tensor) and not is_lazy(w) and w.dim() >= 2:
            return fans_from_shape(tuple(w.shape), rule="shape-fallback")
    if len(shape) < 2:
        raise ValueError(
            f"cannot tell the fans of {type(owner).__name__}.{name} (shape {shape}): the layer "
            f"is not recognised and a tensor with fewer than 2 dimensions has no shape rule; "
            f"pass explicit fans (initlab.Fans(fan_in, fan_out)) or in_axis/out_axis for "
            f"{path!r}, or use a scheme that needs no fans"
        )
    return fans_from_shape(shape, rule="shape-fallback")
