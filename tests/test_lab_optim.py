"""The lab's optimizers: torch.optim's fused numbers, bit for bit, without torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from initlab.lab.optim import FusedOptimizer, fused_available
from initlab.lab.trainer import TrainConfig, make_optimizer

SRC = Path(__file__).resolve().parents[1] / "src"

CASES = [
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "weight_decay": 1e-3}),
    ("sgd", {"momentum": 0.0}),
    ("adam", {}),
    ("adam", {"weight_decay": 1e-3}),
    ("adamw", {"weight_decay": 1e-2}),
]
TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _params(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 8, 8), (4, 8), (3,), (2, 5, 7)]
    return [torch.randn(s, generator=g).requires_grad_() for s in shapes]


@pytest.mark.parametrize(("kind", "kw"), CASES)
def test_equals_torch_optim_fused_bit_for_bit(kind: str, kw: dict) -> None:
    ours, theirs = _params(0), _params(0)
    opt = FusedOptimizer(ours, kind, lr=0.05, **kw)
    ref = TORCH[kind](theirs, lr=0.05, fused=True, **kw)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for i, (a, b, gr) in enumerate(zip(ours, theirs, grads, strict=True)):
            # the third parameter gets no gradient on odd steps: both leave it alone
            skip = i == 2 and step % 2 == 1
            a.grad = None if skip else gr.clone()
            b.grad = None if skip else gr.clone()
        opt.step()
        ref.step()
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a, b), (kind, kw, step)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def test_zero_grad_keeps_the_buffers_when_asked() -> None:
    (p,) = _params(0)[:1]
    p.grad = torch.ones_like(p)
    buf = p.grad
    FusedOptimizer([p], "adam", lr=0.1).zero_grad(set_to_none=False)
    assert p.grad is buf and not p.grad.any()


def test_bad_kind_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of sgd, adam, adamw, got 'lamb'"):
        FusedOptimizer([], "lamb", lr=0.1)


def test_make_optimizer_uses_it_for_float32_and_torch_for_float64() -> None:
    config = TrainConfig(optimizer="sgd", lr=0.1)
    assert isinstance(make_optimizer([torch.zeros(3, requires_grad=True)], config), FusedOptimizer)
    f64 = make_optimizer([torch.zeros(3, dtype=torch.float64, requires_grad=True)], config)
    assert isinstance(f64, torch.optim.SGD)
    assert not fused_available([])


def test_a_training_step_does_not_import_torch_dynamo() -> None:
    code = (
        "import sys, torch\n"
        "from initlab.lab.trainer import TrainConfig, make_optimizer\n"
        "w = torch.ones(3, requires_grad=True)\n"
        "opt = make_optimizer([w], TrainConfig(optimizer='adam'))\n"
        "(w * w).sum().backward(); opt.step()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr
