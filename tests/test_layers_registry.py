"""The layer registry: lookup through the MRO, lazy names and predicates, user layers in
compute_fans / plan / initialize / materialize, re-registration, bad input, buffers, padding
rows and the MultiheadAttention out_proj default."""

from __future__ import annotations

import doctest
import math
import sys
import types
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import initlab
from initlab import fans as fans_module
from initlab import layers
from initlab.layers import (
    ELEMENTWISE,
    LINEAR,
    LayerSpec,
    Layout,
    ParamSpec,
    TorchInit,
    claims_child,
    compute_fans,
    find_layer,
    known_buffer,
    padding_row,
    register_layer,
    registry,
    unregister_layer,
)


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Every test leaves the registry as it found it."""
    tables = (registry._CLASSES, registry._NAMES, registry._PREDICATES)
    saved = [dict(t) for t in tables]
    yield
    for table, old in zip(tables, saved, strict=True):
        table.clear()
        table.update(old)


# -- user layers ---------------------------------------------------------------------------
class Dense(nn.Module):
    """A JAX-style layer: kernel [in, out], a packed [in, 3*out] qkv kernel, a layer scale,
    a padded table and a step counter buffer."""

    def __init__(self, n_in: int = 6, n_out: int = 4, rows: int = 5, pad: int | None = 2) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(n_in, n_out))
        self.qkv = nn.Parameter(torch.empty(n_in, 3 * n_out))
        self.bias = nn.Parameter(torch.empty(n_out))
        self.gamma = nn.Parameter(torch.empty(n_out))
        self.table = nn.Parameter(torch.empty(rows, n_out))
        self.pad = pad
        self.register_buffer("steps", torch.empty((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.kernel * self.gamma + self.bias


JAX = Layout(in_axes=(0,), out_axes=(1,))
DENSE = LayerSpec(
    "dense",
    {
        "kernel": ParamSpec("weight", JAX),
        "qkv": ParamSpec("weight", JAX, blocks=("q", "k", "v"), block_dim=1),
        "bias": ParamSpec("bias", fans_of="kernel", torch_init=TorchInit("zeros")),
        "gamma": ParamSpec("layer_scale", ELEMENTWISE, torch_init=TorchInit("constant", 0.1)),
        "table": ParamSpec(
            "embedding", Layout((0,), (1,)), padding_attr="pad", torch_init=TorchInit("normal", 1.0)
        ),
    },
    attrs=lambda m, name: {"n_in": m.kernel.shape[0]},
    buffers={"steps": 7},
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = Dense()
        self.head = nn.Linear(4, 2)


def test_user_layer_fans_blocks_role_and_attrs() -> None:
    m = Dense()
    assert compute_fans(m, "kernel").rule == "shape-fallback"  # not registered yet
    register_layer(Dense, DENSE)
    k = compute_fans(m, "kernel")
    assert (k.fan_in, k.fan_out, k.rule, k.role, k.layer) == (6, 4, "dense", "weight", "Dense")
    assert (k.torch_fan_in, k.torch_fan_out) == (4, 6)  # torch reads [out, in]
    assert k.attr("n_in") == 6 and k.attr("torch_init") is None
    q = compute_fans(m, "qkv")
    assert (q.fan_in, q.fan_out) == (6, 4)  # one block [6, 4] of [6, 12]
    assert [(b.name, b.start, b.stop, b.dim) for b in q.blocks] == [
        ("q", 0, 4, 1),
        ("k", 4, 8, 1),
        ("v", 8, 12, 1),
    ]
    b = compute_fans(m, "bias")
    assert (b.fan_in, b.fan_out, b.role, b.attr("torch_init")) == (6, 4, "bias", "zeros")
    g = compute_fans(m, "gamma")
    assert (g.fan_in, g.fan_out, g.role, g.torch_fan_in) == (1, 1, "layer_scale", None)
    t = compute_fans(m, "table")
    assert (t.fan_in, t.fan_out, t.role, t.attr("padding_idx")) == (5, 4, "embedding", 2)


def test_user_layer_in_plan_with_block_rules() -> None:
    register_layer(Dense, DENSE)
    policy = initlab.Policy(
        rules=(
            initlab.Rule({"name": "constant", "val": 1.0}, module="Dense", param="qkv", block="k"),
            initlab.Rule("xavier_uniform", module="Dense", param="qkv"),
            initlab.Rule("lecun_normal", module="Dense", param="kernel"),
            initlab.Rule("torch_default", module="Dense"),
            initlab.Rule("torch_default"),
        )
    )
    report = initlab.plan(Net(), policy, seed=0)
    rows = {r.qualname: r for r in report.rows}
    kernel, qkv = rows["dense.kernel"], rows["dense.qkv"]
    assert kernel.fans.fan_in == 6 and kernel.target_std == pytest.approx(1 / math.sqrt(6))
    assert [b.name for b in qkv.fans.blocks] == ["q", "k", "v"]
    assert qkv.target_std == pytest.approx(math.sqrt(2 / (6 + 4)))  # per block, not [6, 12]
    assert [b for b, _, _ in qkv.block_overrides] == ["k"]
    assert rows["dense.gamma"].target_std == 0.0
    assert rows["dense.table"].target_std == 1.0
    assert rows["head.weight"].fans.rule == "linear"


class FusedAttention(nn.Module):
    """timm's Attention shape: a plain Linear child packs q, k, v."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


FUSED = LayerSpec(
    "fused-attention",
    {
        "qkv.weight": ParamSpec("weight", LINEAR, blocks=("q", "k", "v")),
        "qkv.bias": ParamSpec("bias", fans_of="qkv.weight"),
    },
    children={"qkv": {}},
)


def test_a_layer_describes_its_childs_parameter() -> None:
    """The parent's pattern ``qkv.weight`` wins over the child Linear's own spec, reached from
    the parent, from any ancestor, and in a plan; the sibling Linear stays a Linear."""
    model = nn.Sequential(FusedAttention())
    assert compute_fans(model, "0.qkv.weight").blocks == ()  # not registered yet: one Linear
    register_layer(FusedAttention, FUSED)
    for root, path in ((model[0], "qkv.weight"), (model, "0.qkv.weight")):
        f = compute_fans(root, path)
        assert (f.fan_in, f.fan_out, f.rule, f.layer) == (8, 8, "fused-attention", "FusedAttention")
        assert [(b.name, b.start, b.stop) for b in f.blocks] == [
            ("q", 0, 8),
            ("k", 8, 16),
            ("v", 16, 24),
        ]
        assert (f.torch_fan_in, f.torch_fan_out) == (8, 24)  # torch's rule on the whole [24, 8]
    b = compute_fans(model, "0.qkv.bias")
    assert (b.fan_in, b.fan_out, b.role, len(b.blocks)) == (8, 8, "bias", 3)
    assert compute_fans(model, "0.proj.weight").rule == "linear"
    assert claims_child(model[0], "qkv") and not claims_child(model[0], "proj")
    rows = {r.qualname: r for r in initlab.plan(model, "xavier_uniform", seed=0).rows}
    assert rows["0.qkv.weight"].target_std == pytest.approx(math.sqrt(2 / 16))  # 0.354, not 0.258
    assert [b.name for b in rows["0.qkv.weight"].fans.blocks] == ["q", "k", "v"]


def test_user_layer_initialize_and_materialize() -> None:
    register_layer(Dense, DENSE)
    policy = initlab.Policy(
        rules=(
            initlab.Rule("xavier_normal", param="kernel"),
            initlab.Rule("xavier_normal", param="qkv"),
            initlab.Rule("torch_default"),
        )
    )
    net = Net()
    initlab.initialize(net, policy, seed=3)
    d = net.dense
    assert torch.equal(d.bias, torch.zeros(4)) and torch.equal(d.gamma, torch.full((4,), 0.1))
    assert not d.table[2].any() and d.table[[0, 1, 3, 4]].abs().sum() > 0  # padding row kept
    with initlab.meta_build(include_buffers=True):  # the registry's buffer value is used
        lazy = Net()
    initlab.materialize(lazy, policy, seed=3)
    assert lazy.dense.steps.item() == 7 and lazy.dense.steps.dtype == torch.long
    for (name, a), b in zip(net.named_parameters(), lazy.parameters(), strict=True):
        assert torch.equal(a, b), name  # materialize == initialize, bit for bit


def test_unknown_buffer_of_a_user_layer_is_still_refused() -> None:
    with initlab.meta_build(include_buffers=True):
        lazy = Net()
    policy = initlab.Policy(rules=(initlab.Rule("zeros"),))
    with pytest.raises(initlab.MaterializeError, match=r"buffer\(s\) dense\.steps"):
        initlab.materialize(lazy, policy)


# -- lookup --------------------------------------------------------------------------------
def test_lookup_through_the_mro_most_specific_first() -> None:
    class MyLinear(nn.Linear):
        pass

    class MyConvT(nn.ConvTranspose2d):
        pass

    assert compute_fans(MyLinear(3, 5), "weight").rule == "linear"
    f = compute_fans(MyConvT(16, 32, 3, groups=4), "weight")
    assert (f.rule, f.fan_in, f.fan_out) == ("conv-transpose", 36, 72)  # not _ConvNd's "conv"
    assert find_layer(nn.SyncBatchNorm(3)) is find_layer(nn.BatchNorm1d(3))
    assert find_layer(nn.ReLU()) is None
    # a spec for the subclass wins for it, and only for it
    register_layer(MyLinear, LayerSpec("mine", {"weight": ParamSpec("weight", Layout((0,), (1,)))}))
    f = compute_fans(MyLinear(3, 5), "weight")  # weight [5, 3] read as [in, out]
    assert (f.rule, f.fan_in, f.fan_out) == ("mine", 5, 3)
    assert compute_fans(MyLinear(3, 5), "bias").rule == "shape-fallback"  # not in its spec
    assert compute_fans(nn.Linear(3, 5), "weight").rule == "linear"
    unregister_layer(MyLinear)
    assert compute_fans(MyLinear(3, 5), "weight").rule == "linear"


def test_lazy_class_name_is_resolved_only_once_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "initlab_test_fake_pkg.utils.Conv1D"
    register_layer(name, LayerSpec("conv1d", {"weight": ParamSpec("weight", Layout((0,), (1,)))}))

    class Conv1D(nn.Module):  # HF's GPT-2 Conv1D: weight [in, out]
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.empty(8, 24))

    m = Conv1D()
    assert find_layer(m) is None  # its module is not imported: no match, and no import
    assert "initlab_test_fake_pkg" not in sys.modules
    assert "initlab_test_fake_pkg.utils" not in sys.modules
    fake = types.ModuleType("initlab_test_fake_pkg.utils")
    fake.Conv1D = Conv1D  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "initlab_test_fake_pkg.utils", fake)
    f = compute_fans(m, "weight")
    assert (f.rule, f.fan_in, f.fan_out) == ("conv1d", 8, 24)


def test_lazy_packages_are_never_asked_for_a_submodule(monkeypatch: pytest.MonkeyPatch) -> None:
    # a lazy package (as transformers) imports a submodule on getattr: lookups must not
    asked: list[str] = []
    pkg = types.ModuleType("initlab_test_lazy_pkg")

    def lazy(attr: str) -> object:
        asked.append(attr)
        raise AttributeError(attr)

    pkg.__getattr__ = lazy  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "initlab_test_lazy_pkg", pkg)
    name = "initlab_test_lazy_pkg.modeling_x.XNorm"
    register_layer(name, LayerSpec("xnorm", {"weight": ParamSpec("norm_scale", ELEMENTWISE)}))
    try:
        assert find_layer(nn.Linear(2, 2)) is not None and asked == []

        class XNorm(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = nn.Parameter(torch.ones(4))

        # the class's module is imported after a lookup, then the class defined in it
        sub = types.ModuleType("initlab_test_lazy_pkg.modeling_x")
        monkeypatch.setitem(sys.modules, "initlab_test_lazy_pkg.modeling_x", sub)
        pkg.modeling_x = sub  # type: ignore[attr-defined]
        assert find_layer(XNorm()) is None or find_layer(XNorm()).rule != "xnorm"
        sub.XNorm = XNorm  # type: ignore[attr-defined]
        assert find_layer(XNorm()).rule == "xnorm" and asked == []
    finally:
        unregister_layer(name)


def test_predicate_duck_typing_after_class_keys() -> None:
    class HasNf(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.nf = 12
            self.weight = nn.Parameter(torch.empty(4, 12))

    class LinearWithNf(nn.Linear):
        nf = 3

    spec = LayerSpec("duck", {"weight": ParamSpec("weight", Layout((0,), (1,)))})
    register_layer(lambda m: hasattr(m, "nf"), spec)
    f = compute_fans(HasNf(), "weight")
    assert (f.rule, f.fan_in, f.fan_out) == ("duck", 4, 12)
    assert compute_fans(LinearWithNf(3, 5), "weight").rule == "linear"  # a class key wins
    newer = LayerSpec("newer", {"weight": ParamSpec("weight", LINEAR)})
    register_layer(lambda m: isinstance(m, HasNf), newer)
    assert compute_fans(HasNf(), "weight").rule == "newer"  # predicates: newest first


def test_re_registration_needs_replace() -> None:
    register_layer(Dense, DENSE)
    with pytest.raises(ValueError, match=r"Dense is already registered \(rule 'dense'\); pass "):
        register_layer(Dense, DENSE)
    with pytest.raises(ValueError, match="already registered"):
        register_layer(nn.Linear, DENSE)
    flipped = LayerSpec("dense-flipped", {"kernel": ParamSpec("weight", LINEAR)})
    register_layer(Dense, flipped, replace=True)
    f = compute_fans(Dense(), "kernel")
    assert (f.rule, f.fan_in, f.fan_out) == ("dense-flipped", 4, 6)


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        (3, TypeError, r"key 3 is not a layer class, a dotted class name"),
        (int, TypeError, r"int is not an nn.Module subclass"),
        ("Dense", ValueError, r"'Dense' is not a dotted class name; write the module and the"),
        ("pkg.2bad.Dense", ValueError, r"not a dotted class name"),
        (lambda: True, TypeError, r"must take the module as its argument"),
    ],
)
def test_bad_keys(key: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        register_layer(key, DENSE)  # type: ignore[arg-type]


def test_bad_specs() -> None:
    with pytest.raises(TypeError, match=r"spec for .*Dense must be an initlab.layers.LayerSpec"):
        register_layer(Dense, {"kernel": "weight"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown parameter role 'scale'; use one of weight,"):
        ParamSpec("scale", ELEMENTWISE)
    with pytest.raises(ValueError, match=r"exactly one of layout=, fans_of= or fans=.*got 0"):
        ParamSpec("weight")
    with pytest.raises(ValueError, match=r"exactly one of .*got 2"):
        ParamSpec("bias", LINEAR, fans_of="weight")
    with pytest.raises(ValueError, match=r"blocks must be distinct names"):
        ParamSpec("weight", LINEAR, blocks=("q", "q"))
    with pytest.raises(ValueError, match=r"in_axes \(0,\) and out_axes \(0,\) must be distinct"):
        Layout((0,), (0,))
    with pytest.raises(ValueError, match=r"needs both in_axes and out_axes"):
        Layout((0,), ())
    with pytest.raises(ValueError, match=r"group_axis 2 must be one of the in/out axes"):
        Layout((1,), (0,), group_axis=2)
    with pytest.raises(ValueError, match=r"bad name pattern 'w\('"):
        LayerSpec("x", {"w(": ParamSpec("weight", LINEAR)})
    with pytest.raises(TypeError, match=r"params\['w'\] must be a ParamSpec"):
        LayerSpec("x", {"w": LINEAR})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"buffers\['n'\] must be a number"):
        LayerSpec("x", {}, buffers={"n": "zero"})  # type: ignore[dict-item]
    with pytest.raises(KeyError, match=r"is not registered"):
        unregister_layer(Dense)


def test_torch_init_text_round_trip_and_errors() -> None:
    for init in (TorchInit("zeros"), TorchInit("normal", 0.02), TorchInit("uniform_attr", "h")):
        assert TorchInit.parse(str(init)) == init
    assert str(TorchInit("constant", 1)) == "constant:1.0"
    with pytest.raises(ValueError, match=r"unknown torch init kind 'gauss'; use one of"):
        TorchInit("gauss")
    with pytest.raises(ValueError, match=r"'zeros' takes no argument"):
        TorchInit("zeros", 1.0)
    with pytest.raises(ValueError, match=r"'normal' needs a number \(std\)"):
        TorchInit("normal", "big")
    with pytest.raises(ValueError, match=r"'normal:x': 'x' is not a number"):
        TorchInit.parse("normal:x")


def test_blocks_must_divide_the_packed_dimension() -> None:
    register_layer(Dense, DENSE)
    m = Dense()
    m.qkv = nn.Parameter(torch.empty(6, 13))
    with pytest.raises(ValueError, match=r"Dense.qkv \(shape \(6, 13\)\) does not split into"):
        compute_fans(m, "qkv")


# -- layouts, roles, buffers, padding rows, MultiheadAttention -----------------------------
@pytest.mark.parametrize(
    ("layout", "shape", "groups", "fans"),
    [
        (LINEAR, (7, 3), 1, (3, 7)),
        (LINEAR, (5, 3, 4), 1, (12, 20)),  # Bilinear [out, in1, in2]
        (Layout((1,), (0,), group_axis=0), (9, 2, 2, 3), 3, (12, 18)),  # Conv2d(6, 9, groups=3)
        (Layout((0,), (1,), group_axis=0), (16, 8, 3, 3), 4, (36, 72)),  # ConvTranspose2d
        (ELEMENTWISE, (64,), 1, (1, 1)),
    ],
)
def test_layout_fans(layout: Layout, shape: tuple, groups: int, fans: tuple) -> None:
    assert layout.fans(shape, groups) == fans


def test_roles_of_torch_layers() -> None:
    cases = [
        (nn.Linear(3, 4), "weight", "weight"),
        (nn.Linear(3, 4), "bias", "bias"),
        (nn.LayerNorm(4), "weight", "norm_scale"),
        (nn.BatchNorm2d(4), "bias", "norm_shift"),
        (nn.Embedding(5, 4), "weight", "embedding"),
        (nn.PReLU(), "weight", "activation"),
        (nn.LSTM(3, 4), "bias_ih_l0", "bias"),
        (nn.MultiheadAttention(8, 2), "in_proj_weight", "weight"),
    ]
    assert [compute_fans(m, n).role for m, n, _ in cases] == [r for _, _, r in cases]
    assert compute_fans(nn.Linear(3, 4), "weight", convention="torch").role is None


def test_buffers_of_batchnorm_and_instancenorm() -> None:
    assert known_buffer(nn.BatchNorm1d(3), "running_mean") == (0, "BatchNorm1d.running_mean")
    assert known_buffer(nn.BatchNorm2d(3), "running_var") == (1, "BatchNorm2d.running_var")
    bn3 = nn.BatchNorm3d(3)
    assert known_buffer(bn3, "num_batches_tracked") == (0, "BatchNorm3d.num_batches_tracked")
    inorm = nn.InstanceNorm1d(3, track_running_stats=True)
    assert known_buffer(inorm, "running_var") == (1, "InstanceNorm1d.running_var")
    assert known_buffer(nn.LayerNorm(3), "running_var") is None
    assert known_buffer(nn.BatchNorm1d(3), "other") is None
    with initlab.meta_build():
        m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    initlab.materialize(m, initlab.Policy(rules=(initlab.Rule("torch_default"),)))
    bn = m[1]
    assert torch.equal(bn.running_mean, torch.zeros(3))
    assert torch.equal(bn.running_var, torch.ones(3))
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.dtype == torch.long


def test_padding_rows() -> None:
    emb = nn.Embedding(20, 6, padding_idx=-1)
    assert padding_row("weight", 20, emb) == 19
    assert padding_row("weight", 20, nn.EmbeddingBag(20, 6, padding_idx=4)) == 4
    assert padding_row("weight", 20, nn.Embedding(20, 6)) is None
    assert padding_row("weight", 20, nn.Linear(6, 20)) is None
    fans = compute_fans(emb, "weight")
    assert padding_row("weight", 20, fans=fans) == 19  # without the module: from the fans
    assert padding_row("bias", 20, fans=fans) is None
    assert padding_row("weight", 0, emb) is None
    # any scheme keeps the row at zero, in a whole fill and in a window of the table (the
    # executor's path for shards and checkpoints, which has the fans but not the module)
    model = nn.Sequential(nn.Embedding(10, 3, padding_idx=7))
    report = initlab.initialize(model, initlab.Policy(rules=(initlab.Rule("normal"),)), seed=1)
    row = report["0.weight"]
    full = model[0].weight.detach()
    assert not full[7].any() and full[6].abs().sum() > 0
    for window in ((slice(5, 9), slice(0, 3)), (slice(0, 4), slice(1, 3))):
        part = torch.empty(tuple(w.stop - w.start for w in window))
        initlab.fill_row(row, part, initlab.KeyedStream(1, row.stream_name), index=window)
        assert torch.equal(part, full[window])


def test_mha_out_proj_default_is_zero_from_the_parent() -> None:
    mha = nn.MultiheadAttention(8, 2)
    assert claims_child(mha, "out_proj") and not claims_child(mha, "in_proj")
    assert not claims_child(nn.Sequential(nn.Linear(2, 2)), "0")
    assert compute_fans(mha, "out_proj.bias").attr("torch_init") == "zeros"
    assert compute_fans(mha, "out_proj.weight").attr("torch_init") == "kaiming_uniform_sqrt5"
    assert compute_fans(mha.out_proj, "bias").attr("torch_init") == "uniform_fan_in"
    model = nn.Sequential(nn.MultiheadAttention(8, 2))
    policy = initlab.Policy(rules=(initlab.Rule("torch_default"),))
    report = initlab.initialize(model, policy, seed=0)
    rows = {r.qualname: r for r in report.rows}
    assert rows["0.out_proj.bias"].target_std == 0.0
    assert rows["0.out_proj.weight"].target_std == pytest.approx(1 / math.sqrt(8) / math.sqrt(3))
    assert not model[0].out_proj.bias.any() and model[0].out_proj.weight.abs().sum() > 0


def test_a_user_layer_can_impose_a_childs_default() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

    register_layer(Block, LayerSpec("block", {}, children={"proj": {"weight": TorchInit("zeros")}}))
    model = nn.Sequential(Block())
    report = initlab.initialize(model, initlab.Policy(rules=(initlab.Rule("torch_default"),)))
    rows = {r.qualname: r for r in report.rows}
    assert rows["0.proj.weight"].target_std == 0.0 and not model[0].proj.weight.any()
    assert rows["0.proj.bias"].target_std == pytest.approx(0.5 / math.sqrt(3))  # U(±1/sqrt(4))


@pytest.mark.parametrize(
    "module",
    [
        fans_module,
        layers,
        layers.compute,
        layers.defaults,
        layers.registry,
        layers.spec,
        initlab.schemes.torch_default,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: types.ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
