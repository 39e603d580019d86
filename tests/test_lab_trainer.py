"""initlab.lab.trainer: vectorised training equals the plain loop; fallback; divergence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from initlab import build_model
from initlab.lab import load_dataset
from initlab.lab.entries import resolve_entries
from initlab.lab.results import METRICS, RunResult
from initlab.lab.trainer import Run, TrainConfig, build_run_model, train_runs, vmap_problem


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic:n=400,dim=16,classes=3,seed=1")


def _mlp(data):
    return lambda: build_model("mlp:widths=32-16", data.input_shape, data.num_classes)


def _runs(names: list[str], seeds: range) -> list[Run]:
    return [Run(e, s) for e in resolve_entries(names) for s in seeds]


def _assert_close(a: list[RunResult], b: list[RunResult], rtol: float) -> None:
    assert [(r.entry, r.seed, r.run_id) for r in a] == [(r.entry, r.seed, r.run_id) for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.status == y.status
        for m in METRICS:
            assert len(x.metrics[m]) == len(y.metrics[m])
            for u, v in zip(x.metrics[m], y.metrics[m], strict=True):
                assert math.isclose(u, v, rel_tol=rtol, abs_tol=1e-7), (x.entry, x.seed, m, u, v)


def test_init_is_identical_bit_for_bit(data) -> None:
    runs = _runs(["kaiming", "uniform_rule", "torch_default"], range(2))
    rng = torch.get_rng_state()
    models = [build_run_model(_mlp(data), r.entry, r.seed) for r in runs]
    again = [build_run_model(_mlp(data), r.entry, r.seed) for r in runs]
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is untouched
    params, _ = stack_module_state(models)
    for i, (m, n) in enumerate(zip(models, again, strict=True)):
        for name, p in m.named_parameters():
            assert torch.equal(p, n.get_parameter(name))
            assert torch.equal(params[name][i], p)  # what the vectorised path starts from
    # seeds differ, entries differ
    assert not torch.equal(models[0].fc1.weight, models[1].fc1.weight)
    assert not torch.equal(models[0].fc1.weight, models[2].fc1.weight)


def test_init_does_not_depend_on_the_callers_thread_count(data) -> None:
    """Builds run on one thread: torch's QR of a 128x128 matrix (the orthogonal entry) rounds
    differently on two, so without that the values would depend on the machine's cores."""
    runs = _runs(["orthogonal", "kaiming"], range(1))

    def factory() -> nn.Module:
        return build_model("mlp:widths=128-128", data.input_shape, data.num_classes)

    before = torch.get_num_threads()
    built = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            built[n] = [build_run_model(factory, r.entry, r.seed) for r in runs]
            assert torch.get_num_threads() == n  # restored
    finally:
        torch.set_num_threads(before)
    for a, b in zip(built[1], built[2], strict=True):
        for name, p in a.named_parameters():
            assert torch.equal(p, b.get_parameter(name)), name


@pytest.mark.parametrize(
    ("optimizer", "lr"), [("adam", 1e-3), ("sgd", 0.05)], ids=["adam", "sgd-momentum"]
)
def test_vectorised_equals_sequential(data, optimizer: str, lr: float) -> None:
    runs = _runs(["kaiming", "xavier", "normal_rule"], range(2))
    config = TrainConfig(epochs=3, optimizer=optimizer, lr=lr, batch_size=32)
    vec = train_runs(_mlp(data), runs, data, config)
    seq = train_runs(_mlp(data), runs, data, config, vectorised=False)
    assert {r.mode for r in vec} == {"vectorised"} and {r.group_size for r in vec} == {6}
    assert {r.mode for r in seq} == {"sequential"}
    _assert_close(vec, seq, rtol=1e-4)
    for r in vec:  # index 0 at init, then one value per epoch, and it learns
        assert all(len(r.metrics[m]) == 4 for m in METRICS)
        assert r.metrics["train_loss"][-1] < r.metrics["train_loss"][0]
    # same seed, different entry -> same data order but different init: different numbers
    assert vec[0].metrics["train_loss"] != vec[2].metrics["train_loss"]


def test_batchnorm_is_handled_by_stacked_buffers() -> None:
    img = load_dataset("digits", image=True, limit=256)
    factory = lambda: build_model("cnn:batchnorm=true", img.input_shape, img.num_classes)  # noqa: E731
    runs = _runs(["kaiming", "xavier"], range(2))
    config = TrainConfig(epochs=2, batch_size=64)
    notes: list[str] = []
    vec = train_runs(factory, runs, img, config, notify=notes.append)
    seq = train_runs(factory, runs, img, config, vectorised=False)
    assert notes == [] and {r.mode for r in vec} == {"vectorised"}
    _assert_close(vec, seq, rtol=1e-4)


class _Gate(nn.Module):
    """Data-dependent Python control flow: vmap cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 10:
            return 2 * self.fc(x)
        return self.fc(x)


class _Reassign(nn.Module):
    """A buffer reassigned in forward: lost under functional_call, so vmap would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)
        self.register_buffer("mu", torch.zeros(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.mu = 0.9 * self.mu + 0.1 * x.mean(0).detach()
        return self.fc(x - self.mu)


@pytest.mark.parametrize("model", [_Gate, _Reassign], ids=["control-flow", "buffer-reassign"])
def test_unvmappable_models_fall_back_with_one_notice(data, model, capsys) -> None:
    runs = _runs(["kaiming", "xavier"], range(2))
    config = TrainConfig(epochs=2)
    results = train_runs(model, runs, data, config)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("initlab: training sequentially")
    assert {r.mode for r in results} == {"sequential"}
    assert all(r.status == "ok" for r in results)
    forced = train_runs(model, runs, data, config, vectorised=False)
    assert [r.metrics for r in results] == [r.metrics for r in forced]  # the same plain loop


def test_vmap_problem_is_none_for_the_zoo(data) -> None:
    runs = _runs(["kaiming", "xavier"], range(1))
    for spec in ("mlp", "resmlp:depth=2,width=16", "deep:depth=3,width=16"):
        factory = lambda spec=spec: build_model(spec, (16,), 3)  # noqa: E731
        models = [build_run_model(factory, r.entry, 0) for r in runs]
        assert vmap_problem(models, data, TrainConfig()) is None, spec


def test_a_diverging_run_does_not_touch_the_others(data) -> None:
    deep = lambda: build_model("deep:depth=12,width=64", data.input_shape, data.num_classes)  # noqa: E731
    config = TrainConfig(epochs=2, optimizer="sgd", lr=0.1)
    mixed = train_runs(deep, _runs(["ones", "kaiming"], range(2)), data, config)
    alone = train_runs(deep, _runs(["kaiming"], range(2)), data, config, vectorised=False)
    ones, kaiming = mixed[:2], mixed[2:]
    assert all(r.mode == "vectorised" for r in mixed)
    assert all(r.status == "diverged" for r in ones)
    assert all(math.isnan(r.metrics["train_loss"][-1]) for r in ones)
    assert all(r.status == "ok" for r in kaiming)
    _assert_close(kaiming, alone, rtol=1e-4)


def test_progress_counts_every_run_step(data) -> None:
    seen: list[tuple[int, int]] = []
    runs = _runs(["kaiming", "xavier"], range(2))
    config = TrainConfig(epochs=2, batch_size=100)  # 320 train examples: 4 steps an epoch
    train_runs(_mlp(data), runs, data, config, progress=lambda a, t: seen.append((a, t)))
    assert sum(a for a, _ in seen) == 4 * 2 * 4 and {t for _, t in seen} == {32}


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
