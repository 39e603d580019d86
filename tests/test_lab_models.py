"""initlab.zoo and initlab.build_model: the zoo, options, user factories, vmap."""

from __future__ import annotations

import copy
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from initlab import ModelError, build_model
from initlab.zoo import ACTIVATIONS, MODELS, ResidualBlock, make_activation

SHAPES = {
    "digits-flat": (64,),
    "digits-image": (1, 8, 8),
    "mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_builtin_runs_on_every_shape(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, shape, 7)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 7)
    assert isinstance(model.get_submodule("head"), nn.Linear)


def test_mlp_is_the_seeds_mlp() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", (64,), 10)
    torch.manual_seed(0)
    reference = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    assert [n for n, _ in model.named_children()] == ["fc1", "act1", "fc2", "act2", "head"]
    ours, theirs = list(model.parameters()), list(reference.parameters())
    assert len(ours) == len(theirs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert all(isinstance(m, nn.ReLU) for n, m in model.named_children() if n.startswith("act"))


def test_construction_is_deterministic() -> None:
    for name in MODELS:
        torch.manual_seed(3)
        a = build_model(name, (1, 8, 8), 10).state_dict()
        torch.manual_seed(3)
        b = build_model(name, (1, 8, 8), 10).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_mlp_options() -> None:
    m = build_model("mlp:widths=32-16-8,activation=tanh,dropout=0.1", (1, 8, 8), 3)
    names = [n for n, _ in m.named_children()]
    assert names[0] == "flatten" and names[-1] == "head"
    assert [(lin.in_features, lin.out_features) for lin in _linears(m)] == [
        (64, 32),
        (32, 16),
        (16, 8),
        (8, 3),
    ]
    assert isinstance(m.act1, nn.Tanh)
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == 3
    one = build_model("mlp:widths=50", (64,), 10)
    assert [lin.out_features for lin in _linears(one)] == [50, 10]
    dw = build_model("mlp:depth=3,width=20,activation=gelu", (64,), 10)
    assert [lin.out_features for lin in _linears(dw)] == [20, 20, 20, 10]
    assert isinstance(dw.act3, nn.GELU)
    assert [lin.out_features for lin in _linears(build_model("mlp:width=40", (64,), 10))] == [
        40,
        10,
    ]
    linear = build_model("mlp:widths=0", (64,), 10)
    assert [n for n, _ in linear.named_children()] == ["head"]
    assert build_model("mlp:widths=none", (64,), 10).head.in_features == 64


def test_cnn_options_and_sizes() -> None:
    m = build_model("cnn", (3, 32, 32), 10)
    assert [n for n, _ in m.named_children()] == [
        "conv1",
        "act1",
        "pool1",
        "conv2",
        "act2",
        "pool2",
        "flatten",
        "head",
    ]
    assert m.head.in_features == 32 * 8 * 8
    assert build_model("cnn", (1, 28, 28), 10).head.in_features == 32 * 7 * 7
    assert build_model("cnn", (1, 8, 8), 10).head.in_features == 32 * 2 * 2
    bn = build_model("cnn:batchnorm=true,channels=8-12,activation=elu", (1, 8, 8), 10)
    assert isinstance(bn.bn1, nn.BatchNorm2d) and bn.bn2.num_features == 12
    assert bn.conv1.bias is None and m.conv1.bias is not None
    assert isinstance(bn.act2, nn.ELU)
    assert build_model("cnn:channels=4", (1, 8, 8), 10).conv2.out_channels == 4
    flat = build_model("cnn", (3072,), 10)
    assert isinstance(flat.unflatten, nn.Unflatten) and flat.conv1.in_channels == 3
    assert flat(torch.randn(2, 3072)).shape == (2, 10)


def test_deep_and_resmlp_options() -> None:
    d = build_model("deep", (64,), 10)
    assert len(_linears(d)) == 31
    assert all(lin.out_features == 256 for lin in _linears(d)[:-1])
    small = build_model("deep:depth=5,width=16,activation=tanh", (64,), 10)
    assert len(_linears(small)) == 6 and isinstance(small.act5, nn.Tanh)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in d.modules())
    r = build_model("resmlp:depth=3,width=24,activation=silu", (1, 8, 8), 10)
    blocks = [m for m in r.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 3 and isinstance(r.block2.act, nn.SiLU)
    assert r.stem.out_features == 24 and r.block3.fc2.out_features == 24
    # the residual path: with fc2 zeroed every block is the identity
    with torch.no_grad():
        for b in blocks:
            b.fc2.weight.zero_()
            b.fc2.bias.zero_()
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(r(x), r.head(r.act(r.stem(x.flatten(1)))))


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("transformer", "unknown model 'transformer'.*mlp"),
        ("mlp:depthh=3", "unknown option 'depthh'.*activation"),
        ("mlp:/some/path", "options are key=value"),
        ("mlp:activation=swoosh", "unknown activation 'swoosh'.*relu"),
        ("mlp:widths=a-b", "ints joined by '-'"),
        ("mlp:widths=64-0", "positive integer"),
        ("mlp:widths=64,depth=2", "not both"),
        ("mlp:dropout=1.5", "dropout"),
        ("cnn:batchnorm=1", "true or false"),
        ("cnn:channels=4-8-16", "two conv widths"),
        ("deep:depth=0", "depth must be a positive integer"),
        ("resmlp:width=2.5", "width must be a positive integer"),
        ("mlp:a=1,,b=2", "empty item"),
    ],
)
def test_model_spec_errors(spec: str, problem: str) -> None:
    with pytest.raises(ModelError, match=problem) as info:
        build_model(spec, (64,), 10)
    assert isinstance(info.value, ValueError)


def test_shape_errors() -> None:
    with pytest.raises(ModelError, match="image=True"):
        build_model("cnn", (50,), 10)
    with pytest.raises(ModelError, match="at least 4x4"):
        build_model("cnn", (1, 2, 2), 10)
    with pytest.raises(ModelError, match="num_classes"):
        build_model("mlp", (64,), 0)
    with pytest.raises(ModelError, match="input_shape"):
        build_model("mlp", (), 10)


def test_activations() -> None:
    assert set(ACTIVATIONS) == {
        "relu",
        "tanh",
        "gelu",
        "silu",
        "elu",
        "leaky_relu",
        "selu",
        "sigmoid",
        "identity",
    }
    x = torch.randn(5)
    for name in ACTIVATIONS:
        act = make_activation(name)
        assert isinstance(act, nn.Module) and act(x).shape == x.shape
        assert getattr(act, "inplace", False) is False
    assert isinstance(make_activation(None), nn.Identity)
    assert isinstance(make_activation("ReLU"), nn.ReLU)
    assert make_activation("leaky_relu").negative_slope == 0.01
    with pytest.raises(ValueError, match="unknown activation 'mish'; known: relu, tanh"):
        make_activation("mish")


@pytest.mark.parametrize(
    "spec", ["mlp:dropout=0", "cnn", "deep:depth=3,width=8", "resmlp:depth=2,width=8"]
)
def test_models_are_vmap_friendly(spec: str) -> None:
    shape = (1, 8, 8)
    models = [build_model(spec, shape, 10) for _ in range(3)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.randn(4, *shape)

    def run(p: dict, b: dict) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    out = torch.vmap(run)(params, buffers)
    assert out.shape == (3, 4, 10)
    for i, m in enumerate(models):
        assert torch.allclose(out[i], m(x), atol=1e-5)


# --------------------------------------------------------------------------- user factories

_FACTORIES = """
from torch import nn

def both(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(__import__("math").prod(input_shape)),
                                                 num_classes))

def none_():
    return nn.Linear(64, 5)

def only_classes(num_classes, hidden=3):
    return nn.Sequential(nn.Linear(64, hidden), nn.Linear(hidden, num_classes))

def kw(**kwargs):
    assert set(kwargs) == {"input_shape", "num_classes"}
    return nn.Linear(kwargs["input_shape"][0], kwargs["num_classes"])

def not_a_module(input_shape, num_classes):
    return "nope"

def broken(input_shape, num_classes):
    raise RuntimeError("boom")

class Net(nn.Module):
    def __init__(self, input_shape=(64,), num_classes=10):
        super().__init__()
        self.fc = nn.Linear(input_shape[0], num_classes)

    def forward(self, x):
        return self.fc(x)
"""


@pytest.fixture
def factory_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_models.py"
    path.write_text(textwrap.dedent(_FACTORIES))
    return path


def test_user_factory_from_file(factory_file: Path) -> None:
    m = build_model(f"{factory_file}:both", (1, 8, 8), 4)
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    assert build_model(f"{factory_file}:none_", (64,), 10)(torch.randn(2, 64)).shape == (2, 5)
    assert build_model(f"{factory_file}:only_classes", (64,), 6)[1].out_features == 6
    assert build_model(f"{factory_file}:kw", (12,), 2).weight.shape == (2, 12)
    net = build_model(f"{factory_file}:Net", (9,), 3)
    assert net.fc.weight.shape == (3, 9)


def test_user_factory_from_module_path(factory_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(factory_file.parent))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    m = build_model("my_models:both", (64,), 3)
    assert m(torch.randn(1, 64)).shape == (1, 3)
    assert build_model("torch.nn:Identity", (64,), 3)(torch.ones(2)).shape == (2,)


def test_user_factory_errors(factory_file: Path) -> None:
    with pytest.raises(ModelError, match=r"not an nn.Module"):
        build_model(f"{factory_file}:not_a_module", (64,), 10)
    with pytest.raises(ModelError, match="RuntimeError: boom"):
        build_model(f"{factory_file}:broken", (64,), 10)
    with pytest.raises(ModelError, match="does not exist"):
        build_model(f"{factory_file.parent / 'missing.py'}:f", (64,), 10)
    with pytest.raises(ModelError, match="has no attribute"):
        build_model(f"{factory_file}:nothing_here", (64,), 10)
    with pytest.raises(ModelError, match="cannot import module"):
        build_model("no_such_pkg_xyz.models:make", (64,), 10)
