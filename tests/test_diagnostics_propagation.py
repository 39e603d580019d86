"""initlab.diagnostics: per-layer signal propagation, validated against the literature.

Literature checks (synthetic Gaussian inputs, fixed seeds):
* He et al. 2015: in a deep plain ReLU MLP, Kaiming (fan_in, gain sqrt 2) keeps the
  pre-activation variance constant, Xavier halves it at every layer.
* Glorot & Bengio 2010: in a deep tanh MLP, back-propagated gradients keep a much flatter
  variance across depth under Xavier ("normalized") init than under U[±1/sqrt(n)].
"""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
import torch
from torch import nn

import initlab
from initlab.diagnostics import (
    Diagnosis,
    SchemeComparison,
    Thresholds,
    apply_scheme_,
    compare_schemes,
    diagnose,
    plot_histograms,
    plot_propagation,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Single-threaded BLAS: small matrices, shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gaussian(*shape: int, seed: int = 1234) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def mlp(depth: int, width: int, act: type[nn.Module] = nn.ReLU, **kw) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act(**kw)]
    return nn.Sequential(*layers)


def init(model: nn.Module, scheme, seed: int = 0) -> nn.Module:
    apply_scheme_(model, scheme, torch.Generator().manual_seed(seed))
    return model


def hooks_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


# -- literature -------------------------------------------------------------------------------
def test_relu_mlp_kaiming_preserves_and_xavier_halves_variance():
    depth, width = 32, 256
    x = gaussian(512, width)
    kaiming = initlab.get_scheme("kaiming_normal", nonlinearity="relu")
    dk = diagnose(init(mlp(depth, width), kaiming), x, singular_values=False)
    dx = diagnose(init(mlp(depth, width), "xavier_normal"), x, singular_values=False)
    var_k = [s**2 for s in dk.series("output_std")]
    var_x = [s**2 for s in dx.series("output_std")]
    assert len(var_k) == len(var_x) == depth
    # Kaiming: every pre-activation variance within [0.25, 4] x the first layer's
    assert all(0.25 <= v / var_k[0] <= 4 for v in var_k), [v / var_k[0] for v in var_k]
    # Xavier on square layers: Var(W) = 1/n, so Var(y_l) = Var(y_{l-1}) / 2
    per_layer = (var_x[-1] / var_x[0]) ** (1 / (depth - 1))
    assert 0.4 <= per_layer <= 0.6
    steps = sorted(b / a for a, b in itertools.pairwise(var_x))
    assert 0.4 <= steps[len(steps) // 2] <= 0.6  # the median step too
    # flags: Xavier vanishes forward (ratio of std 0.707^31 ~ 2e-5 < 1e-2), Kaiming does not
    assert dx.vanishing["forward"] and not dk.vanishing["forward"]
    assert not dk.exploding["forward"] and not dk.exploding["backward"]
    assert dx.factor("forward") == pytest.approx(math.sqrt(per_layer), rel=1e-9)


def test_tanh_mlp_xavier_keeps_gradients_flat_unlike_old_uniform_rule():
    depth, width = 16, 256
    x = gaussian(512, width)
    targets = torch.randint(0, 10, (512,), generator=torch.Generator().manual_seed(7))
    old = initlab.get_scheme("variance_scaling", scale=1 / 3, mode="fan_in", distribution="uniform")
    cmp = compare_schemes(
        lambda: mlp(depth, width, nn.Tanh),
        {"xavier": "xavier_uniform", "standard": old},
        x,
        targets,
        bins=0,
        singular_values=False,
    )
    spread = {}
    for name, d in cmp.diagnoses.items():
        assert d.loss_name == "cross_entropy"
        g = d.series("grad_output_std")
        assert all(v is not None and v > 0 for v in g)
        spread[name] = max(g) / min(g)
    # Glorot & Bengio 2010: U[±1/sqrt(n)] gives n Var(W) = 1/3; as the activations shrink
    # (tanh' -> 1) the gradient std shrinks by sqrt(1/3) = 0.577 per layer on the way down
    # (mean field: chi_1 = sigma_w^2 E[tanh'^2] -> 1/3). Xavier (n Var(W) = 1) stays nearly flat.
    assert spread["xavier"] < 6.0  # measured 4.6 over 16 layers
    assert spread["standard"] > 300 * spread["xavier"]  # measured ~5e3
    f_std = cmp.diagnoses["standard"].factor("backward")
    f_xav = cmp.diagnoses["xavier"].factor("backward")
    assert 0.5 < f_std < 0.65 and abs(f_std - 3**-0.5) < 0.05
    assert f_xav > 0.85
    assert cmp.diagnoses["standard"].vanishing["backward"]
    assert not cmp.diagnoses["xavier"].vanishing["backward"]


# -- leaving the model as it was ---------------------------------------------------------------
class DropNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x)))))


@pytest.mark.parametrize("train", [None, True, False])
def test_diagnose_leaves_params_grads_buffers_modes_and_rng_unchanged(train):
    torch.manual_seed(0)
    model = DropNet()
    x = gaussian(64, 16)
    model(x).sum().backward()  # existing grads must survive
    model.train()
    model.drop.eval()  # a mixed-mode model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: (p.grad, p.grad.clone()) for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    x_before = x.clone()
    rng = torch.get_rng_state()

    d = diagnose(model, x, train=train)

    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # params and BN running stats / num_batches_tracked
    for n, p in model.named_parameters():
        assert p.grad is grads[n][0] and torch.equal(p.grad, grads[n][1])
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert torch.equal(x, x_before)
    assert hooks_count(model) == 0
    assert d.train == (model.training if train is None else train)


def test_dropout_masks_are_reproducible_and_do_not_advance_rng():
    model = DropNet().train()
    x = gaussian(64, 16)
    a = diagnose(model, x).to_dict()
    b = diagnose(model, x).to_dict()
    assert a == b  # same RNG state both times: same dropout masks
    c = diagnose(model, x, seed=3).to_dict()
    assert c == diagnose(model, x, seed=3).to_dict()
    assert c["records"] != a["records"] or c["loss"] != a["loss"]


class Boom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.act(self.fc(x))
        raise RuntimeError("boom")


def test_hooks_removed_and_state_restored_after_exception():
    model = Boom().eval()
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"):
        diagnose(model, gaussian(4, 8), train=True)
    assert hooks_count(model) == 0
    assert not model.training and not model.fc.training
    assert torch.equal(torch.get_rng_state(), rng)


# -- architectures -----------------------------------------------------------------------------
class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


def test_residual_block():
    model = nn.Sequential(nn.Linear(8, 16), Residual(16), Residual(16), nn.Linear(16, 2))
    d = diagnose(model, gaussian(32, 8))
    assert [r.name for r in d.records] == [
        "0", "1.f.0", "1.f.1", "1.f.2", "2.f.0", "2.f.1", "2.f.2", "3",
    ]  # fmt: skip
    assert all(r.grad_output_std is not None and r.grad_output_std > 0 for r in d.records)
    assert all(r.weights["weight"].grad_std > 0 for r in d.records if r.kind == "Linear")


class AttnNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        a, _ = self.attn(h, h, h)
        return self.head(torch.relu(a + h))


def test_multihead_attention_in_custom_module():
    d = diagnose(AttnNet(), gaussian(4, 5, 6), targets=gaussian(4, 5, 3))
    assert d.loss_name == "mse"
    kinds = [r.kind for r in d.records]
    assert kinds == ["Linear", "MultiheadAttention", "Linear"]
    attn = d.records[1]
    assert attn.output_shape == (4, 5, 16) and attn.grad_output_std > 0
    assert attn.unit_dim == 2  # features are the last dimension of [batch, seq, embed]
    w = attn.weights
    assert set(w) == {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}
    assert set(w["in_proj_weight"].blocks) == {"q", "k", "v"}
    assert w["in_proj_weight"].grad_std > 0 and w["out_proj.weight"].grad_std > 0
    assert all(b.condition >= 1 for b in w["in_proj_weight"].blocks.values())


def conv_net(inplace: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=inplace),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )  # fmt: skip


def test_conv_bn_inplace_relu_matches_out_of_place():
    torch.manual_seed(0)
    a = conv_net(inplace=True).train()
    b = conv_net(inplace=False).train()
    b.load_state_dict(a.state_dict())
    x = gaussian(16, 3, 10, 10)
    y = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(0))
    da, db = diagnose(a, x, y), diagnose(b, x, y)
    assert da.loss_name == "cross_entropy"
    assert [r.kind for r in da.records] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "ReLU",
                                            "Linear"]  # fmt: skip
    for ra, rb in zip(da.records, db.records, strict=True):
        assert ra.to_dict() == rb.to_dict()
    relu = da.records[2]
    assert relu.unit_dim == 1 and relu.input_std == pytest.approx(da.records[1].output_std)
    assert da.records[1].grad_output_std > 0  # BN's output: gradient w.r.t. pre-activation
    assert relu.grad_output_std != da.records[1].grad_output_std
    assert da.records[0].weights["weight"].sv.largest > 0


def test_inplace_first_activation_does_not_touch_inputs():
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(4, 4))
    x = gaussian(8, 4)
    before = x.clone()
    d = diagnose(model, x)
    assert torch.equal(x, before)
    assert d.records[0].input_std == pytest.approx(float(x.double().std(correction=0)))
    assert d.records[0].grad_output_std is not None


def test_module_called_twice_gets_two_records():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.tanh(self.fc(x)))

    d = diagnose(Twice(), gaussian(16, 8))
    assert [(r.label, r.call) for r in d.records] == [("fc", 0), ("fc#1", 1)]
    assert d.records[0].weights and not d.records[1].weights
    assert d.records[1].input_std < 1  # tanh output


# -- dead and saturated units ------------------------------------------------------------------
def test_dead_relu_after_negative_bias():
    lin = nn.Linear(16, 32)
    with torch.no_grad():
        lin.bias.fill_(-100.0)
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(32, 2))
    d = diagnose(model, gaussian(64, 16))
    assert d.records[1].dead_fraction == 1.0
    assert d.dead_layers == ["1"]
    assert d.records[0].dead_fraction is None  # Linear: not applicable
    assert "dead units in 1 activation(s) (max 100%)" in d.summary()


def test_partially_dead_units_counted_per_unit():
    lin = nn.Linear(4, 8)
    with torch.no_grad():
        lin.bias[:2] = -100.0  # two of eight units dead
    d = diagnose(nn.Sequential(lin, nn.LeakyReLU()), gaussian(64, 4))
    assert d.records[1].dead_fraction == pytest.approx(2 / 8)


@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid])
def test_saturation_after_huge_weights(act):
    lin = nn.Linear(64, 32)
    with torch.no_grad():
        lin.weight.mul_(1e5)  # |pre-activation| >> 3: saturated for every sample
    d = diagnose(nn.Sequential(lin, act()), gaussian(256, 64))
    assert d.records[1].saturated_fraction == 1.0
    small = diagnose(nn.Sequential(init(nn.Linear(64, 32), "xavier_normal"), act()),
                     gaussian(256, 64))  # fmt: skip
    assert small.records[1].saturated_fraction == 0.0
    assert small.saturated_layers == []


def test_thresholds_are_arguments():
    x = gaussian(128, 32)
    model = init(mlp(4, 32), "xavier_normal")  # std factor ~0.7 per layer
    assert not diagnose(model, x).vanishing["forward"]
    strict = Thresholds(factor_low=0.9)
    assert diagnose(model, x, thresholds=strict).vanishing["forward"]
    with pytest.raises(ValueError):
        Thresholds(ratio_low=2.0)


# -- losses, singular values, serialisation ----------------------------------------------------
def test_default_and_custom_losses():
    model = nn.Linear(4, 3)
    x = gaussian(10, 4)
    assert diagnose(model, x).loss_name == "half_sum_squares"
    out = model(x).detach()
    assert diagnose(model, x).loss == pytest.approx(float(0.5 * out.pow(2).sum() / 10))
    assert diagnose(model, x, torch.zeros(10, dtype=torch.long)).loss_name == "cross_entropy"
    assert diagnose(model, x, torch.zeros(10, 3)).loss_name == "mse"
    d = diagnose(model, x, loss_fn=lambda o: o.sum())
    assert d.loss_name == "custom"
    # dL/dW of sum(Wx + b) is 1 x^T for every row: its std is the std of x's column sums
    expected = float(x.sum(0).repeat(3).double().std(correction=0))
    assert d.records[0].weights["weight"].grad_std == pytest.approx(expected)


def test_singular_values_of_orthogonal_and_conv_weights():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 8))
    init(model, "orthogonal")
    d = diagnose(model, gaussian(2, 2, 6, 6))
    for r in (d.records[0], d.records[1]):
        sv = r.weights["weight"].sv
        assert sv.largest == pytest.approx(1.0) and sv.smallest == pytest.approx(1.0)
        assert sv.condition == pytest.approx(1.0)
    assert "bias" in d.records[0].weights and d.records[0].weights["bias"].sv is None


def test_serialisation_and_table():
    d = diagnose(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), gaussian(8, 4), bins=10)
    data = json.loads(d.to_json())
    assert set(data) == {"train", "loss", "loss_name", "thresholds", "flags", "records"}
    assert data["records"][0]["histogram"]["counts"] and len(data["records"]) == 2
    assert data["flags"]["vanishing"] == {"forward": False, "backward": False}
    assert d.records[0].to_dict()["weights"]["weight"]["shape"] == [4, 4]
    text = str(d)
    assert "Linear" in text and "ReLU" in text and "grad std" in text
    assert d.table().row_count == 2


# -- comparing schemes and plots ---------------------------------------------------------------
def test_compare_schemes_on_model_factory_and_callables(tmp_path):
    model = mlp(3, 16)
    original = copy.deepcopy(model.state_dict())
    x = gaussian(32, 16)
    seen = []
    schemes = {
        "kaiming": initlab.get_scheme("kaiming_normal", nonlinearity="relu"),
        "xavier": "xavier_uniform",
        "config": {"name": "orthogonal", "gain": 2**0.5},
        "own": lambda m: seen.append(type(m).__name__),
        "lsuv": "lsuv",
    }
    cmp = compare_schemes(model, schemes, x, seed=5)
    assert isinstance(cmp, SchemeComparison) and list(cmp.diagnoses) == list(schemes)
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())
    assert seen == ["Sequential"]
    lsuv = cmp.diagnoses["lsuv"].series("output_std")
    assert all(abs(s**2 - 1) < 0.1 for s in lsuv)
    # the same scheme and seed give the same diagnosis, from a model or a factory
    again = compare_schemes(lambda: mlp(3, 16), {"kaiming": schemes["kaiming"]}, x, seed=5)
    assert again.diagnoses["kaiming"].to_dict() == cmp.diagnoses["kaiming"].to_dict()
    text = str(cmp)
    assert "kaiming" in text and "act std" in text and "grad std" in text
    assert len(cmp.rows()) == 5 * 3
    path = tmp_path / "cmp.json"
    data = json.loads(cmp.to_json(path))
    assert json.loads(path.read_text()) == data and data["schemes"] == list(schemes)
    with pytest.raises(KeyError):
        compare_schemes(model, {"bad": "no_such_scheme"}, x)


def test_plots_write_pngs(tmp_path):
    x = gaussian(64, 16)
    cmp = compare_schemes(lambda: mlp(6, 16, nn.Tanh), {"xavier": "xavier_normal",
                          "tiny": {"name": "normal", "std": 0.01}}, x)  # fmt: skip
    outs = [
        plot_propagation(cmp, tmp_path / "prop.png"),
        plot_histograms(cmp, tmp_path / "hist.png"),
        plot_histograms(cmp, tmp_path / "sub" / "grad.png", quantity="gradient"),
        plot_histograms(cmp.diagnoses["xavier"], tmp_path / "one.png", layers=[0, "1"]),
    ]
    for p in outs:
        assert p.exists() and p.read_bytes()[:8] == PNG_MAGIC
    no_hist = diagnose(mlp(2, 4), gaussian(4, 4))
    with pytest.raises(ValueError, match="bins > 0"):
        plot_histograms(no_hist, tmp_path / "x.png")
    assert isinstance(no_hist, Diagnosis)
