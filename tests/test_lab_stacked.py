"""initlab.lab.stacked: R runs as one batched network equal the R plain modules."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archs import cnn as grouped_bn_cnn
from initlab import build_model
from initlab.lab.stacked import StackedNet, stack_problem

R = 3
# (spec or factory, one example's shape): the lab's zoo, and a grouped conv with BatchNorm
CASES = {
    "mlp": ("mlp", (64,)),
    "mlp-dropout0": ("mlp:widths=32-16,dropout=0.0", (20,)),
    "cnn": ("cnn", (1, 8, 8)),
    "cnn-flat-input": ("cnn", (64,)),
    "cnn-batchnorm": ("cnn:batchnorm=true", (1, 8, 8)),
    "deep": ("deep:depth=6,width=32,activation=tanh", (20,)),
    "resmlp": ("resmlp:depth=2,width=16", (20,)),
    "grouped-conv-bn": (grouped_bn_cnn, (3, 8, 8)),
}


def _models(case: str) -> tuple[list[nn.Module], tuple[int, ...]]:
    spec, shape = CASES[case]
    torch.manual_seed(0)
    make = (lambda: build_model(spec, shape, 10)) if isinstance(spec, str) else spec
    return [make() for _ in range(R)], shape


# one training step: forward (float32, batched kernels: summation order differs from the plain
# module's, hence tolerances of a few float32 ulps scaled by the values), gradients, buffers
@pytest.mark.parametrize("case", list(CASES))
def test_train_step_equals_the_plain_modules(case: str) -> None:
    models, shape = _models(case)
    plain = [copy.deepcopy(m).train() for m in models]
    net = StackedNet(models).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(R, 16, *shape, generator=gen)
    y = torch.randint(0, 10, (R, 16), generator=gen)
    losses = net.loss(x, y)
    losses.sum().backward()
    for r, m in enumerate(plain):
        loss = F.cross_entropy(m(x[r]), y[r])
        loss.backward()
        torch.testing.assert_close(losses[r], loss, rtol=1e-5, atol=1e-6)
        state = net.run_state(r)
        grads = {n: p.grad for n, p in net.params.items()}
        for name, p in m.named_parameters():
            g = net.module_layout(name, grads[name][r])  # Linear weights: stored [in, out]
            torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-6)
            assert torch.equal(state[name], p.detach())
        for name, b in m.named_buffers():  # BatchNorm running statistics, per run
            torch.testing.assert_close(state[name], b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_shared_input_eval_equals_the_plain_modules(case: str) -> None:
    models, shape = _models(case)
    net = StackedNet(models)
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(2))
    net.train()
    net.loss(x.expand(R, *x.shape), torch.zeros(R, 32, dtype=torch.long))  # moves BN stats
    net.eval()
    with torch.no_grad():
        out = net.logits_shared(x)
    for r, m in enumerate(models):
        m.load_state_dict(net.run_state(r))
        with torch.no_grad():
            torch.testing.assert_close(out[r], m.eval()(x), rtol=1e-4, atol=1e-5)


def test_run_state_loads_into_the_plain_module() -> None:
    models, _ = _models("mlp")
    net = StackedNet(models)
    fresh = copy.deepcopy(models[0])
    for p in fresh.parameters():
        p.data.zero_()
    fresh.load_state_dict(net.run_state(2))
    want = models[2].state_dict()
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, want[name]), name


class _MyLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (nn.LSTM(4, 3), "LSTM has no stacked form"),
        (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), "LayerNorm has no stacked form"),
        (nn.Sequential(_MyLinear(4, 4)), "_MyLinear has no stacked form"),  # subclass: forward
        (nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True)), "ReLU(inplace=True) at 1."),
        (nn.Sequential(nn.Flatten(0)), "Flatten other than Flatten(1, -1) has no stacked form"),
        (nn.Conv2d(1, 1, 3, padding_mode="circular"), "Conv2d(padding_mode='circular')"),
    ],
)
def test_uncovered_models_say_why(model: nn.Module, problem: str) -> None:
    assert (stack_problem(model) or "").startswith(problem)
    with pytest.raises(ValueError, match="no stacked form"):
        StackedNet([model])


def test_no_models_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        StackedNet([])
