"""Layer-aware fans (compute_fans): definitions, torch parity, blocks, lazy/meta, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from initlab.fans import Fans
from initlab.layers import GRU_GATES, LSTM_GATES, compute_fans, explain_fans


def torch_rule(p: torch.Tensor) -> tuple[int, int]:
    return nn.init._calculate_fan_in_and_fan_out(p)


def fi_fo(f: Fans) -> tuple[int, int]:
    return f.fan_in, f.fan_out


# -- the four examples ------------------------------------------------------------
def test_depthwise_conv():
    m = nn.Conv2d(32, 32, 3, groups=32)
    f = compute_fans(m, "weight")
    assert fi_fo(f) == (9, 9)
    assert (f.torch_fan_in, f.torch_fan_out) == (9, 288) == torch_rule(m.weight)
    assert f.rule == "conv" and f.layer == "Conv2d" and f.param == "weight"
    assert f.attr("groups") == 32


def test_conv_transpose_groups():
    m = nn.ConvTranspose2d(16, 32, 3, groups=4)
    f = compute_fans(m, "weight")
    assert fi_fo(f) == (36, 72)
    assert (f.torch_fan_in, f.torch_fan_out) == (72, 144) == torch_rule(m.weight)
    assert f.attr("fan_in_strided") == 36.0
    fb = compute_fans(m, "bias")
    assert fi_fo(fb) == (36, 72) and fb.torch_fan_in == 72 and fb.param == "bias"


def test_conv_transpose_stride_in_attrs_not_fans():
    m = nn.ConvTranspose2d(16, 32, 4, stride=2)
    f = compute_fans(m, "weight")
    assert fi_fo(f) == (16 * 16, 32 * 16)
    assert f.attr("fan_in_strided") == 16 * 16 / 4
    c = compute_fans(nn.Conv1d(4, 6, 5, stride=5), "weight")
    assert fi_fo(c) == (20, 30) and c.attr("fan_out_strided") == 6.0


def test_lstm_weight_ih():
    m = nn.LSTM(10, 20)
    f = compute_fans(m, "weight_ih_l0")
    assert fi_fo(f) == (10, 20)
    assert [b.name for b in f.blocks] == list(LSTM_GATES)
    assert all(b.size == 20 and b.dim == 0 for b in f.blocks)
    f.check_blocks(tuple(m.weight_ih_l0.shape))
    assert f.attr("hidden_size") == 20 and f.attr("gates") == LSTM_GATES


def test_mha_packed():
    m = nn.MultiheadAttention(16, 4)
    f = compute_fans(m, "in_proj_weight")
    assert fi_fo(f) == (16, 16)
    assert [(b.name, b.start, b.stop) for b in f.blocks] == [
        ("q", 0, 16),
        ("k", 16, 32),
        ("v", 32, 48),
    ]
    assert (f.torch_fan_in, f.torch_fan_out) == (16, 48)
    fb = compute_fans(m, "in_proj_bias")
    assert fi_fo(fb) == (16, 16) and fb.blocks == f.blocks
    fb.check_blocks(tuple(m.in_proj_bias.shape))


# -- torch convention parity --------------------------------------------------------------
def many_layers() -> list[nn.Module]:
    return [
        nn.Linear(7, 3),
        nn.Bilinear(3, 4, 5),
        nn.Conv1d(4, 6, 3, groups=2),
        nn.Conv2d(6, 9, (2, 3), groups=3),
        nn.Conv3d(2, 4, 3),
        nn.ConvTranspose1d(4, 6, 3, groups=2),
        nn.ConvTranspose2d(16, 32, 3, groups=4),
        nn.ConvTranspose3d(3, 6, 2, groups=3),
        nn.Embedding(11, 4),
        nn.EmbeddingBag(11, 4),
        nn.LSTM(5, 8, num_layers=2, bidirectional=True, proj_size=3),
        nn.GRU(5, 8, num_layers=2),
        nn.RNN(5, 8),
        nn.LSTMCell(5, 8),
        nn.GRUCell(5, 8),
        nn.RNNCell(5, 8, nonlinearity="relu"),
        nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True),
        nn.MultiheadAttention(8, 2),
    ]


@pytest.mark.parametrize("m", many_layers(), ids=lambda m: type(m).__name__)
def test_torch_convention_equals_torch(m):
    for name, p in m.named_parameters():
        if p.dim() < 2:
            with pytest.raises(ValueError, match="fewer than 2 dimensions"):
                compute_fans(m, name, "torch")
            with pytest.raises(ValueError):
                torch_rule(p)
            continue
        f = compute_fans(m, name, convention="torch")
        assert fi_fo(f) == torch_rule(p), name
        assert f.blocks == () and f.rule == "torch-shape"


@pytest.mark.parametrize("m", many_layers(), ids=lambda m: type(m).__name__)
def test_layer_convention_everywhere(m):
    for name, p in m.named_parameters():
        f = compute_fans(m, name)
        assert f.layer is not None and f.param == name.split(".")[-1]
        assert f.rule != "shape-fallback", name
        assert f.fan_in > 0 and f.fan_out > 0
        f.check_blocks(tuple(p.shape))  # blocks tile dim 0 exactly
        assert list(f.attrs) == sorted(f.attrs)
        hash(f)
        assert explain_fans(f).startswith(f"{f.layer}.{f.param}: fan_in={f.fan_in}")


# -- per-layer definitions ----------------------------------------------------------------
def test_linear_and_bias():
    m = nn.Linear(784, 256)
    for name in ("weight", "bias"):
        f = compute_fans(m, name)
        assert fi_fo(f) == (784, 256) and (f.torch_fan_in, f.torch_fan_out) == (784, 256)
        assert f.rule == "linear" and f.blocks == ()
    q = nn.modules.linear.NonDynamicallyQuantizableLinear(4, 2)
    assert fi_fo(compute_fans(q, "weight")) == (4, 2)


def test_bilinear():
    m = nn.Bilinear(3, 4, 5)  # weight [5, 3, 4]
    f = compute_fans(m, "weight")
    assert fi_fo(f) == (12, 20)
    assert f.attr("fan_out_input2") == 15 and f.attr("fan_out_outer") == 5
    assert f.attr("in1_features") == 3
    assert fi_fo(compute_fans(m, "bias")) == (12, 20)


@pytest.mark.parametrize(
    "cls,k",
    [(nn.Conv1d, (3,)), (nn.Conv2d, (3, 2)), (nn.Conv3d, (2, 3, 1))],
)
def test_conv_nd_groups(cls, k):
    m = cls(6, 12, k, groups=3)
    f = compute_fans(m, "weight")
    rf = math.prod(k)
    assert fi_fo(f) == (2 * rf, 4 * rf)
    assert f.attr("kernel_size") == k


def test_embedding():
    m = nn.Embedding(1000, 64, padding_idx=3, max_norm=2.0)
    f = compute_fans(m, "weight")
    assert fi_fo(f) == (1000, 64)
    assert (f.torch_fan_in, f.torch_fan_out) == (64, 1000)
    assert f.attr("padding_idx") == 3 and f.attr("max_norm") == 2.0
    assert f.rule == "embedding"
    b = compute_fans(nn.EmbeddingBag(10, 4, padding_idx=0), "weight")
    assert fi_fo(b) == (10, 4) and b.attr("padding_idx") == 0


def test_lstm_all_layers_directions_proj():
    h, p, inp = 20, 7, 10
    m = nn.LSTM(inp, h, num_layers=3, bidirectional=True, proj_size=p)
    seen = set()
    for name, t in m.named_parameters():
        f = compute_fans(m, name)
        seen.add(name)
        layer = int(name.split("_l")[1][0])
        layer_in = inp if layer == 0 else 2 * p
        if name.startswith("weight_hr"):
            assert tuple(t.shape) == (p, h)
            assert fi_fo(f) == (h, p) and f.blocks == ()
            continue
        assert len(f.blocks) == 4 and all(b.size == h for b in f.blocks)
        f.check_blocks(tuple(t.shape))
        if "_ih_" in name:
            assert fi_fo(f) == (layer_in, h), name
        else:
            assert fi_fo(f) == (p, h), name
        assert f.attr("proj_size") == p and f.attr("reverse") == name.endswith("_reverse")
    assert "weight_hr_l2_reverse" in seen and "bias_hh_l2_reverse" in seen


def test_gru_and_rnn():
    g = nn.GRU(6, 9, num_layers=2, bidirectional=True)
    f = compute_fans(g, "weight_ih_l1_reverse")
    assert fi_fo(f) == (18, 9) and [b.name for b in f.blocks] == list(GRU_GATES)
    assert fi_fo(compute_fans(g, "bias_hh_l0")) == (9, 9)
    r = nn.RNN(6, 9, nonlinearity="relu")
    fr = compute_fans(r, "weight_hh_l0")
    assert fi_fo(fr) == (9, 9) and fr.blocks == () and fr.attr("nonlinearity") == "relu"
    assert compute_fans(nn.RNN(3, 4), "bias_ih_l0").attr("nonlinearity") == "tanh"


def test_cells():
    c = nn.LSTMCell(5, 8)
    f = compute_fans(c, "weight_hh")
    assert fi_fo(f) == (8, 8) and len(f.blocks) == 4
    assert fi_fo(compute_fans(c, "bias_ih")) == (5, 8)
    assert len(compute_fans(nn.GRUCell(5, 8), "weight_ih").blocks) == 3
    rc = compute_fans(nn.RNNCell(5, 8), "weight_ih")
    assert rc.blocks == () and rc.attr("nonlinearity") == "tanh"


def test_mha_separate_and_bias_kv():
    m = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
    assert fi_fo(compute_fans(m, "q_proj_weight")) == (8, 8)
    assert fi_fo(compute_fans(m, "k_proj_weight")) == (4, 8)
    assert fi_fo(compute_fans(m, "v_proj_weight")) == (6, 8)
    fb = compute_fans(m, "in_proj_bias")
    assert len(fb.blocks) == 3
    assert fb.attr("block_fans") == (("q", 8, 8), ("k", 4, 8), ("v", 6, 8))
    assert fi_fo(compute_fans(m, "bias_k")) == (4, 8)
    assert fi_fo(compute_fans(m, "bias_v")) == (6, 8)
    assert compute_fans(m, "bias_k").torch_fan_in == 8  # torch's rule on [1, 1, E]


def test_dotted_path_out_proj():
    m = nn.MultiheadAttention(8, 2)
    f = compute_fans(m, "out_proj.weight")
    assert f.rule == "linear" and fi_fo(f) == (8, 8)
    assert f.layer == "NonDynamicallyQuantizableLinear" and f.param == "weight"
    assert compute_fans(m, "out_proj.bias").attr("torch_init") == "zeros"
    assert compute_fans(m.out_proj, "bias").attr("torch_init") == "uniform_fan_in"  # the Linear's
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert fi_fo(compute_fans(seq, "2.weight")) == (4, 2)


@pytest.mark.parametrize(
    "m",
    [
        nn.BatchNorm1d(4),
        nn.BatchNorm2d(4),
        nn.BatchNorm3d(4),
        nn.SyncBatchNorm(4),
        nn.InstanceNorm2d(4, affine=True),
        nn.LayerNorm((3, 4)),
        nn.GroupNorm(2, 4),
        nn.RMSNorm(4),
    ],
    ids=lambda m: type(m).__name__,
)
def test_norm_layers_elementwise(m):
    for name, _ in m.named_parameters():
        f = compute_fans(m, name)
        assert fi_fo(f) == (1, 1) and f.rule == "norm-elementwise"
        assert f.torch_fan_in is None


def test_prelu():
    f = compute_fans(nn.PReLU(3, init=0.1), "weight")
    assert fi_fo(f) == (1, 1) and f.rule == "prelu-elementwise"
    assert f.attr("init") == pytest.approx(0.1) and f.attr("num_parameters") == 3


# -- lazy, meta, DTensor-like global shapes -----------------------------------------------
def test_lazy_modules():
    lin = nn.LazyLinear(5)
    with pytest.raises(ValueError, match="uninitialised lazy"):
        compute_fans(lin, "weight")
    with pytest.raises(ValueError, match="forward"):
        compute_fans(lin, "bias")
    lin(torch.zeros(2, 7))
    assert fi_fo(compute_fans(lin, "weight")) == (7, 5)
    assert fi_fo(compute_fans(lin, "bias")) == (7, 5)
    conv = nn.LazyConvTranspose2d(8, 3, groups=2)
    conv(torch.zeros(1, 4, 5, 5))
    assert fi_fo(compute_fans(conv, "weight")) == (2 * 9, 4 * 9)
    c2 = nn.LazyConv1d(6, 3, groups=3)
    c2(torch.zeros(1, 3, 5))
    assert fi_fo(compute_fans(c2, "weight")) == (3, 6)


def test_meta_device():
    with torch.device("meta"):
        mods = [nn.Linear(4096, 1024), nn.LSTM(16, 32, num_layers=2), nn.Conv2d(8, 8, 3, groups=8)]
    assert fi_fo(compute_fans(mods[0], "weight")) == (4096, 1024)
    assert len(compute_fans(mods[1], "weight_hh_l1").blocks) == 4
    assert fi_fo(compute_fans(mods[2], "bias")) == (9, 9)
    assert fi_fo(compute_fans(mods[0], "weight", "torch")) == (4096, 1024)


def test_dtensor_uses_global_shape():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    fake_pg = pytest.importorskip("torch.testing._internal.distributed.fake_pg")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard, distribute_tensor

    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=0, world_size=2)
    try:
        mesh = init_device_mesh("cpu", (2,))
        m = nn.LSTM(6, 8)
        lin = nn.Linear(6, 8)
        for mod, name in ((m, "weight_ih_l0"), (lin, "weight"), (lin, "bias")):
            t = getattr(mod, name)
            setattr(mod, name, nn.Parameter(distribute_tensor(t.detach(), mesh, [Shard(0)])))
        assert isinstance(lin.weight, DTensor) and lin.weight.to_local().shape == (4, 6)
        assert fi_fo(compute_fans(lin, "weight")) == (6, 8)
        assert fi_fo(compute_fans(lin, "bias")) == (6, 8)
        f = compute_fans(m, "weight_ih_l0")
        assert fi_fo(f) == (6, 8) and f.blocks[-1].stop == 32
    finally:
        dist.destroy_process_group()


# -- explicit axes and fallbacks ----------------------------------------------------------
class Einsum(nn.Module):
    """A custom layer with a rank-3 kernel [heads, d_in, d_head] and a scalar gain."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(4, 16, 8))
        self.scale = nn.Parameter(torch.ones(()))
        self.vec = nn.Parameter(torch.ones(8))


def test_explicit_axes_rank3():
    m = Einsum()
    f = compute_fans(m, "kernel", in_axis=1, out_axis=2, batch_axis=0)
    assert fi_fo(f) == (16, 8) and f.rule == "axes"
    assert f.layer == "Einsum" and f.param == "kernel"
    assert (f.torch_fan_in, f.torch_fan_out) == (128, 32)
    g = compute_fans(m, "kernel", in_axis=1, out_axis=(0, 2))
    assert fi_fo(g) == (16, 32)
    # explicit axes override a known layer's rule
    lin = nn.Linear(3, 5)
    assert fi_fo(compute_fans(lin, "weight", in_axis=0, out_axis=1)) == (5, 3)
    with pytest.raises(ValueError, match="convention='layer'"):
        compute_fans(lin, "weight", "torch", in_axis=1)


def test_unknown_module_fallback_recorded():
    m = Einsum()
    f = compute_fans(m, "kernel")
    assert f.rule == "shape-fallback"
    assert fi_fo(f) == torch_rule(m.kernel) == (16 * 8, 4 * 8)
    assert "shape-fallback" in explain_fans(f)


def test_unknown_bias_takes_weight_fans():
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(6, 3, 2))
            self.bias = nn.Parameter(torch.empty(6))

    f = compute_fans(Custom(), "bias")
    assert f.rule == "shape-fallback" and fi_fo(f) == (6, 12)


# -- errors --------------------------------------------------------------------------------
def test_unknown_param_lists_names():
    with pytest.raises(ValueError, match=r"no parameter 'wieght'.*weight, bias"):
        compute_fans(nn.Linear(2, 3), "wieght")
    with pytest.raises(ValueError, match=r"no submodule 'nope'.*in_proj_weight"):
        compute_fans(nn.MultiheadAttention(4, 1), "nope.weight")
    with pytest.raises(ValueError, match="bias=False"):
        compute_fans(nn.Linear(2, 3, bias=False), "bias")


def test_one_d_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        compute_fans(nn.Linear(2, 3), "bias", convention="torch")
    with pytest.raises(ValueError, match=r"Einsum\.vec.*in_axis/out_axis"):
        compute_fans(Einsum(), "vec")
    with pytest.raises(ValueError, match=r"Einsum\.scale"):
        compute_fans(Einsum(), "scale")


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        compute_fans(torch.zeros(2, 2), "weight")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fan convention"):
        compute_fans(nn.Linear(2, 3), "weight", convention="jax")


# -- property-based checks ----------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    g=st.integers(1, 4),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
    k=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    transposed=st.booleans(),
    s=st.integers(1, 3),
)
def test_conv_identities(g, cin, cout, k, transposed, s):
    in_ch, out_ch = g * cin, g * cout
    cls = {
        (1, False): nn.Conv1d,
        (2, False): nn.Conv2d,
        (3, False): nn.Conv3d,
        (1, True): nn.ConvTranspose1d,
        (2, True): nn.ConvTranspose2d,
        (3, True): nn.ConvTranspose3d,
    }[(len(k), transposed)]
    with torch.device("meta"):
        m = cls(in_ch, out_ch, tuple(k), stride=s, groups=g)
    f = compute_fans(m, "weight")
    rf = math.prod(k)
    assert fi_fo(f) == (cin * rf, cout * rf)
    # each of the out/g outputs of a group sums in/g·rf inputs: fan_in·out == fan_out·in
    assert f.fan_in * out_ch == f.fan_out * in_ch
    assert f.fan_in * g == in_ch * rf and f.fan_out * g == out_ch * rf
    assert (f.torch_fan_in, f.torch_fan_out) == torch_rule(m.weight)
    assert fi_fo(compute_fans(m, "weight", "torch")) == torch_rule(m.weight)
    assert fi_fo(compute_fans(m, "bias")) == fi_fo(f)
    # transposed: torch's rule reads the swapped roles of dims 0 and 1, per group
    if transposed:
        assert f.torch_fan_in == f.fan_out and f.torch_fan_out == f.fan_in * g
        assert f.attr("fan_in_strided") == pytest.approx(f.fan_in / s ** len(k))


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["LSTM", "GRU", "RNN"]),
    inp=st.integers(1, 5),
    h=st.integers(2, 6),
    layers=st.integers(1, 3),
    bidir=st.booleans(),
    proj=st.integers(0, 1),
)
def test_rnn_blocks_tile(mode, inp, h, layers, bidir, proj):
    cls = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}[mode]
    kw = {"proj_size": proj} if mode == "LSTM" else {}
    with torch.device("meta"):
        m = cls(inp, h, num_layers=layers, bidirectional=bidir, **kw)
    n_gates = {"LSTM": 4, "GRU": 3, "RNN": 0}[mode]
    for name, p in m.named_parameters():
        f = compute_fans(m, name)
        f.check_blocks(tuple(p.shape))
        assert len(f.blocks) == (0 if name.startswith("weight_hr") else n_gates)
        if p.dim() == 2:
            assert f.fan_in == p.shape[1]
            assert fi_fo(compute_fans(m, name, "torch")) == torch_rule(p)
