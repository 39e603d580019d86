"""LSUV (Mishkin & Matas 2016): unit output variance in every layer, in execution order."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from initlab.diagnostics import LSUV_PAPER, LSUV_PYTORCH, LSUVReport, lsuv_


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gaussian(*shape: int, seed: int = 1234) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def output_vars(model: nn.Module, x: torch.Tensor, kinds=(nn.Linear, nn.Conv2d)) -> list[float]:
    """Population variance of every Linear/Conv output, read before in-place activations."""
    out: list[float] = []
    hooks = [
        m.register_forward_hook(lambda m, a, y: out.append(float(y.double().var(correction=0))))
        for m in model.modules()
        if isinstance(m, kinds)
    ]
    with torch.no_grad():
        model(x.clone())
    for h in hooks:
        h.remove()
    return out


def relu_mlp(depth: int = 20, width: int = 128) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(64, width), nn.ReLU(inplace=True)]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def test_deep_relu_mlp_with_inplace_relus_reaches_unit_variance():
    torch.manual_seed(0)
    model = relu_mlp()
    x = gaussian(256, 64)
    rep = lsuv_(model, x, generator=0)
    assert isinstance(rep, LSUVReport) and rep.all_converged
    assert [r.name for r in rep.layers] == [str(2 * i) for i in range(20)]
    assert all(abs(r.final_var - 1) < 0.1 for r in rep.layers)
    assert all(1 <= r.iterations <= 10 for r in rep.layers)
    measured = output_vars(model, x)
    assert len(measured) == 20 and all(abs(v - 1) < 0.1 for v in measured), measured
    for lin in model:
        if isinstance(lin, nn.Linear):
            assert torch.count_nonzero(lin.bias) == 0


def test_small_cnn_reaches_unit_variance():
    torch.manual_seed(0)
    model = small_cnn()
    x = gaussian(32, 3, 16, 16)
    rep = lsuv_(model, x, generator=1)
    assert rep.all_converged and [r.kind for r in rep.layers] == ["Conv2d"] * 3 + ["Linear"]
    assert all(abs(v - 1) < 0.1 for v in output_vars(model, x)), output_vars(model, x)


@pytest.mark.parametrize("preset", [LSUV_PAPER, LSUV_PYTORCH])
def test_presets_and_tolerance_semantics(preset):
    model = relu_mlp(6, 64)
    x = gaussian(128, 64)
    rep = lsuv_(model, x, generator=2, **preset)
    assert rep.all_converged and rep.measure == preset["measure"]
    for r in rep.layers:
        if preset["measure"] == "var":
            assert abs(r.final_var - 1) < preset["tol"]
        else:
            assert abs(r.final_var**0.5 - 1) < preset["tol"]


def test_target_variance():
    model = relu_mlp(5, 32)
    x = gaussian(128, 64)
    rep = lsuv_(model, x, target_var=4.0, tol=0.01, generator=0)
    assert rep.all_converged
    assert all(abs(v - 4) < 0.01 for v in output_vars(model, x))


class Reordered(nn.Module):
    """Layers registered in the opposite order to the one they run in."""

    def __init__(self) -> None:
        super().__init__()
        self.last = nn.Linear(32, 8)
        self.middle = nn.Linear(32, 32)
        self.first = nn.Linear(16, 32)
        self.unused = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


def test_layers_are_processed_in_execution_order():
    model = Reordered()
    x = gaussian(128, 16)
    rep = lsuv_(model, x, generator=0)
    assert [r.name for r in rep.layers] == ["first", "middle", "last"]
    assert rep.not_executed == ["unused"]
    assert rep.all_converged
    assert all(abs(v - 1) < 0.1 for v in output_vars(model, x))
    only = lsuv_(Reordered(), x, layers=["middle"], generator=0)
    assert [r.name for r in only.layers] == ["middle"]
    with pytest.raises(ValueError, match="no module"):
        lsuv_(Reordered(), x, layers=["nope"])


class DropBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, 32)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.bn(self.fc1(x)))))


def test_leaves_rng_buffers_modes_inputs_and_hooks_alone():
    model = DropBN().train()
    model.bn.eval()
    x = gaussian(64, 16)
    x0 = x.clone()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    rng = torch.get_rng_state()
    rep = lsuv_(model, x, generator=torch.Generator().manual_seed(0))
    assert rep.all_converged  # dropout masks are the same in every pass
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())
    assert model.training and not model.bn.training and model.drop.training
    assert torch.equal(x, x0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_hooks_removed_after_error():
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("bad forward")

    model = Bad()
    with pytest.raises(RuntimeError, match="bad forward"):
        lsuv_(model, gaussian(8, 4), generator=0)
    assert not model.fc._forward_hooks and not model.fc._forward_pre_hooks


def test_orthonormal_preinit_and_reproducibility():
    a, b = relu_mlp(3, 32), relu_mlp(3, 32)
    x = gaussian(64, 64)
    rep = lsuv_(a, x, max_iter=0, generator=5)
    assert all(r.iterations == 0 and r.scale == 1.0 for r in rep.layers)
    w = a[2].weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(32), atol=1e-5)
    assert torch.count_nonzero(a[0].bias) == 0
    lsuv_(a, x, generator=5)
    lsuv_(b, x, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_without_preinit_keeps_weights_direction_and_bias():
    torch.manual_seed(0)
    model = relu_mlp(3, 32)
    x = gaussian(256, 64)
    w0, b0 = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    rep = lsuv_(model, x, orthonormal_preinit=False, tol=0.01, max_iter=20)
    c = rep.layers[0].scale
    assert torch.allclose(model[0].weight, w0 * c) and torch.equal(model[0].bias, b0)
    assert rep.all_converged  # with a non-zero bias one rescaling is not exact: it iterates


def test_zero_variance_layer_is_reported_not_converged():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # everything after the ReLU is 0
        model[2].bias.zero_()
    rep = lsuv_(model, gaussian(32, 8), orthonormal_preinit=False)
    assert rep.layers[1].final_var == 0.0 and not rep.layers[1].converged
    assert not rep.all_converged


def test_report_serialisation_and_validation():
    rep = lsuv_(relu_mlp(2, 16), gaussian(32, 64), generator=0)
    data = json.loads(rep.to_json())
    assert data["all_converged"] and len(data["layers"]) == 2
    assert set(data["layers"][0]) == {"name", "kind", "iterations", "initial_var", "final_var",
                                      "scale", "converged", "block"}  # fmt: skip
    assert data["layers"][0]["block"] is None and data["skipped"] == []
    assert rep.to_dict() == data and "LSUV" in str(rep) and rep.table().row_count == 2
    for bad in ({"tol": 0}, {"max_iter": -1}, {"target_var": 0}, {"measure": "rms"}):
        with pytest.raises(ValueError):
            lsuv_(relu_mlp(2, 16), gaussian(4, 64), **bad)
