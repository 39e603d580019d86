"""torch.nn's layers in the registry: what each one connects, and its ``reset_parameters``.

Fans (``fan_in`` = inputs summed into one output unit, ``fan_out`` = output units one input unit
feeds, per block for packed parameters; He et al. 2015, https://arxiv.org/abs/1502.01852):

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
  i.e. ``mode="fan_out"`` here. The ``padding_idx`` row stays zero. attrs: ``padding_idx``,
  ``max_norm``.
* **MultiheadAttention**: ``in_proj_weight [3E, E]`` has fans ``(E, E)`` and blocks q, k, v
  along dim 0; ``in_proj_bias`` the same blocks. Separate ``q/k/v_proj_weight``
  (``kdim``/``vdim`` != ``E``): ``(E, E)``, ``(kdim, E)``, ``(vdim, E)``; then ``in_proj_bias``
  reports the q block's fans, each block carries its own ``fan_in``/``fan_out`` and
  ``attrs["block_fans"]`` lists them. ``bias_k``/``bias_v`` take the k/v projection's fans.
  ``out_proj`` is a Linear (pass ``"out_proj.weight"``); the layer zeroes ``out_proj.bias``.
* **RNN / LSTM / GRU** (and cells): ``weight_ih_l{k}`` ``[G*H, in_k]`` -> ``(in_k, H)``,
  ``weight_hh_l{k}`` ``[G*H, R]`` -> ``(R, H)`` (``R = proj_size or H``), ``weight_hr_l{k}``
  ``[P, H]`` -> ``(H, P)``; ``in_k`` is ``input_size`` for layer 0 else ``R*directions``. LSTM
  has blocks i, f, g, o, GRU r, z, n, plain RNN none. Biases share their weight's fans/blocks.
* **Norm layers** (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm) and **PReLU**:
  element-wise scale/shift, ``fan_in = fan_out = 1``. BatchNorm/InstanceNorm buffers:
  ``running_mean`` 0, ``running_var`` 1, ``num_batches_tracked`` 0.

torch defaults (``torch_default``): Linear/Conv weight ``kaiming_uniform_(a=sqrt(5))``, bias
``U(±1/sqrt(fan_in))``; Bilinear ``U(±1/sqrt(in1))``; Embedding ``N(0, 1)``; RNNs
``U(±1/sqrt(hidden_size))``; MHA ``xavier_uniform_`` projections, zero ``in_proj_bias`` and
``out_proj.bias``, ``xavier_normal_`` ``bias_k``/``bias_v``; norms 1 and 0; PReLU its ``init``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from torch import Tensor, nn

from ..fans import Block, Fans, torch_fans
from .defaults import TorchInit
from .registry import register_layer
from .spec import ELEMENTWISE, LINEAR, LayerSpec, Layout, ParamSpec

__all__ = ["GRU_GATES", "LSTM_GATES"]

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")

KAIMING = TorchInit("kaiming_uniform_sqrt5")
BIAS_UNIFORM = TorchInit("uniform_fan_in")
ZEROS = TorchInit("zeros")
WEIGHT_AND_BIAS = {
    "weight": ParamSpec("weight", LINEAR, torch_init=KAIMING),
    "bias": ParamSpec("bias", fans_of="weight", torch_init=BIAS_UNIFORM),
}


def _shape(module: nn.Module, name: str) -> tuple[int, ...]:
    t = getattr(module, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(f"{type(module).__name__} has no tensor {name!r} to read fans from")
    return tuple(int(s) for s in t.shape)


# -- Linear, Bilinear ----------------------------------------------------------------------
def _linear_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    out, inp = _shape(m, "weight")
    return {"in_features": inp, "out_features": out}


def _bilinear_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    out, in1, in2 = _shape(m, "weight")
    return {
        "in1_features": in1,
        "in2_features": in2,
        "out_features": out,
        "fan_out_input2": out * in1,
        "fan_out_outer": out,
    }


register_layer(nn.Linear, LayerSpec("linear", WEIGHT_AND_BIAS, _linear_attrs))
register_layer(
    nn.Bilinear,
    LayerSpec(
        "bilinear",
        {
            "weight": ParamSpec(
                "weight", LINEAR, torch_init=TorchInit("uniform_attr", "in1_features")
            ),
            "bias": ParamSpec(
                "bias", fans_of="weight", torch_init=TorchInit("uniform_attr", "in1_features")
            ),
        },
        _bilinear_attrs,
    ),
)


# -- convolutions --------------------------------------------------------------------------
def _conv_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    w = _shape(m, "weight")
    g, k, s = int(m.groups), math.prod(w[2:]), math.prod(m.stride)
    attrs: dict[str, Any] = {
        "groups": g,
        "kernel_size": tuple(w[2:]),
        "stride": tuple(m.stride),
        "dilation": tuple(m.dilation),
        "in_channels": int(m.in_channels),
        "out_channels": int(m.out_channels),
    }
    if m.transposed:  # [in, out/g, *k]
        attrs["fan_in_strided"] = (w[0] // g) * k / s
    else:  # [out, in/g, *k]
        attrs["fan_out_strided"] = (w[0] // g) * k / s
    return attrs


def _conv_spec(rule: str, layout: Layout) -> LayerSpec:
    return LayerSpec(
        rule,
        {
            "weight": ParamSpec("weight", layout, torch_init=KAIMING),
            "bias": ParamSpec("bias", fans_of="weight", torch_init=BIAS_UNIFORM),
        },
        _conv_attrs,
    )


register_layer(nn.modules.conv._ConvNd, _conv_spec("conv", Layout((1,), (0,), group_axis=0)))
register_layer(
    nn.modules.conv._ConvTransposeNd, _conv_spec("conv-transpose", Layout((0,), (1,), group_axis=0))
)


# -- Embedding -----------------------------------------------------------------------------
def _embedding_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    num, dim = _shape(m, "weight")
    return {"num_embeddings": num, "embedding_dim": dim, "max_norm": m.max_norm}


EMBEDDING = LayerSpec(
    "embedding",
    {
        "weight": ParamSpec(
            "embedding",
            Layout((0,), (1,)),
            padding_attr="padding_idx",
            torch_init=TorchInit("normal", 1.0),
        )
    },
    _embedding_attrs,
)
register_layer(nn.Embedding, EMBEDDING)
register_layer(nn.EmbeddingBag, EMBEDDING)


# -- MultiheadAttention --------------------------------------------------------------------
def _mha_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    return {
        "embed_dim": int(m.embed_dim),
        "num_heads": int(m.num_heads),
        "head_dim": int(m.head_dim),
        "kdim": int(m.kdim),
        "vdim": int(m.vdim),
        "packed": bool(m._qkv_same_embed_dim),
    }


def _mha_proj_fans(m: nn.Module) -> dict[str, tuple[int, int]]:
    e = int(m.embed_dim)
    return {"q": (e, e), "k": (int(m.kdim), e), "v": (int(m.vdim), e)}


def _mha_in_proj_bias(m: nn.Module, name: str, shape: tuple[int, ...]) -> Fans:
    """Blocks q, k, v; when the projections are separate each block carries its own fans."""
    e, per_proj = int(m.embed_dim), _mha_proj_fans(m)
    packed = bool(m._qkv_same_embed_dim)
    blocks = tuple(Block(n, i * e, (i + 1) * e) for i, n in enumerate("qkv"))
    if not packed:
        blocks = tuple(
            dataclasses.replace(b, fan_in=per_proj[b.name][0], fan_out=per_proj[b.name][1])
            for b in blocks
        )
    tfi, tfo = torch_fans(_shape(m, "in_proj_weight" if packed else "q_proj_weight"))
    block_fans = tuple((p, *per_proj[p]) for p in "qkv")
    return Fans(
        e, e, blocks, torch_fan_in=tfi, torch_fan_out=tfo, attrs=(("block_fans", block_fans),)
    )


def _mha_bias_kv(m: nn.Module, name: str, shape: tuple[int, ...]) -> Fans:
    """``bias_k``/``bias_v`` [1, 1, E]: the k/v projection's fans; torch's rule on itself."""
    fi, fo = _mha_proj_fans(m)[name[-1]]
    tfi, tfo = torch_fans(shape)
    return Fans(fi, fo, torch_fan_in=tfi, torch_fan_out=tfo)


XAVIER_UNIFORM = TorchInit("xavier_uniform")
register_layer(
    nn.MultiheadAttention,
    LayerSpec(
        "mha",
        {
            "in_proj_weight": ParamSpec(
                "weight", LINEAR, blocks=("q", "k", "v"), torch_init=XAVIER_UNIFORM
            ),
            "[qkv]_proj_weight": ParamSpec("weight", LINEAR, torch_init=XAVIER_UNIFORM),
            "in_proj_bias": ParamSpec("bias", fans=_mha_in_proj_bias, torch_init=ZEROS),
            "bias_[kv]": ParamSpec(
                "bias", fans=_mha_bias_kv, torch_init=TorchInit("xavier_normal")
            ),
        },
        _mha_attrs,
        children={"out_proj": {"bias": ZEROS}},  # _reset_parameters zeroes it after the Linear
    ),
)


# -- recurrent layers ----------------------------------------------------------------------
_RNN_NAME = re.compile(r"(?:weight|bias)_(?:ih|hh|hr)_l(\d+)(_reverse)?")
_RNN_GATES = {"LSTM": LSTM_GATES, "GRU": GRU_GATES}
_HIDDEN = TorchInit("uniform_attr", "hidden_size")


def _rnn_gates(m: nn.Module) -> tuple[str, ...]:
    return _RNN_GATES.get(getattr(m, "mode", ""), ())


def _rnn_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    match = _RNN_NAME.fullmatch(name)
    assert match is not None  # the spec's patterns admit only these names
    attrs: dict[str, Any] = {
        "hidden_size": int(m.hidden_size),
        "proj_size": int(m.proj_size),
        "input_size": int(m.input_size),
        "num_layers": int(m.num_layers),
        "bidirectional": bool(m.bidirectional),
        "layer_index": int(match.group(1)),
        "reverse": match.group(2) is not None,
        "gates": _rnn_gates(m),
        "mode": m.mode,
    }
    if m.mode in ("RNN_TANH", "RNN_RELU"):
        attrs["nonlinearity"] = "tanh" if m.mode == "RNN_TANH" else "relu"
    return attrs


register_layer(
    nn.RNNBase,
    LayerSpec(
        "rnn",
        {
            r"weight_(ih|hh)_l\d+(?:_reverse)?": ParamSpec(
                "weight", LINEAR, blocks=_rnn_gates, torch_init=_HIDDEN
            ),
            r"weight_hr_l\d+(?:_reverse)?": ParamSpec("weight", LINEAR, torch_init=_HIDDEN),
            r"bias_(ih|hh)(_l\d+(?:_reverse)?)": ParamSpec(
                "bias", fans_of=r"weight_\1\2", torch_init=_HIDDEN
            ),
        },
        _rnn_attrs,
    ),
)


def _cell_spec(gates: tuple[str, ...], nonlinearity: bool) -> LayerSpec:
    def attrs(m: nn.Module, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hidden_size": int(m.hidden_size),
            "proj_size": 0,
            "input_size": int(m.input_size),
            "gates": gates,
        }
        if nonlinearity:
            out["nonlinearity"] = m.nonlinearity
        return out

    return LayerSpec(
        "rnn",
        {
            "weight_(ih|hh)": ParamSpec("weight", LINEAR, blocks=gates, torch_init=_HIDDEN),
            "bias_(ih|hh)": ParamSpec("bias", fans_of=r"weight_\1", torch_init=_HIDDEN),
        },
        attrs,
    )


register_layer(nn.RNNCellBase, _cell_spec((), False))
register_layer(nn.RNNCell, _cell_spec((), True))
register_layer(nn.LSTMCell, _cell_spec(LSTM_GATES, False))
register_layer(nn.GRUCell, _cell_spec(GRU_GATES, False))


# -- element-wise: norms, PReLU ------------------------------------------------------------
NORM_PARAMS = {
    "weight": ParamSpec("norm_scale", ELEMENTWISE, torch_init=TorchInit("constant", 1.0)),
    "bias": ParamSpec("norm_shift", ELEMENTWISE, torch_init=TorchInit("constant", 0.0)),
}
NORM = LayerSpec("norm-elementwise", NORM_PARAMS)
# BatchNorm, SyncBatchNorm, InstanceNorm: running statistics as a freshly built layer has them
register_layer(
    nn.modules.batchnorm._NormBase,
    LayerSpec(
        "norm-elementwise",
        NORM_PARAMS,
        buffers={"running_mean": 0, "running_var": 1, "num_batches_tracked": 0},
    ),
)
for _norm in (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm):
    register_layer(_norm, NORM)


def _prelu_attrs(m: nn.Module, name: str) -> dict[str, Any]:
    return {"init": float(m.init), "num_parameters": _shape(m, "weight")[0]}


register_layer(
    nn.PReLU,
    LayerSpec(
        "prelu-elementwise",
        {
            "weight": ParamSpec(
                "activation", ELEMENTWISE, torch_init=TorchInit("constant_attr", "init")
            )
        },
        _prelu_attrs,
    ),
)
