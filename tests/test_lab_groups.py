"""initlab.lab.groups and plan_vectorised: group sizes from memory, threads from timing."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from initlab import build_model
from initlab.lab import groups, load_dataset
from initlab.lab.entries import resolve_entries
from initlab.lab.groups import (
    ThreadTrial,
    fastest_threads,
    quick_threads,
    run_bytes,
    runs_per_group,
    thread_candidates,
)
from initlab.lab.trainer import Run, TrainConfig, build_run_model, plan_vectorised, train_runs


@pytest.mark.parametrize(
    ("runs", "per_run", "budget", "size"),
    [
        (33, 10**6, 10**9, 33),  # all fit: one group
        (100, 10**9, 8 * 10**9, 8),  # 8 fit: 13 groups of 7 or 8, none bigger than 8
        (10, 10**9, 4 * 10**9, 4),  # 4 fit: 3 groups, made equal: 4, 4, 2
        (9, 10**9, 4 * 10**9, 3),  # 4 fit: 3 groups of 3
        (5, 10**12, 10**9, 1),  # nothing fits: one at a time
    ],
)
def test_runs_per_group_fits_the_budget(runs: int, per_run: int, budget: int, size: int) -> None:
    assert runs_per_group(runs, per_run, budget) == size
    assert size * per_run <= budget or size == 1


def test_run_bytes_counts_parameters_and_activations() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    params = (10 * 20 + 20 + 20 * 5 + 5) * 4
    per_example = (20 + 20 + 5) * 4  # the three leaves' outputs
    assert run_bytes(model, torch.zeros(10), 8, 4) == 4 * params + 2 * per_example * 8
    assert run_bytes(model, torch.zeros(10), 8, 100) == 4 * params + per_example * 100
    assert model.training  # mode restored, no hooks left
    assert not any(m._forward_hooks for m in model.modules())


def test_fastest_threads_keeps_the_fastest_and_restores_the_setting() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    def step() -> None:  # slow at 1 thread, fast at 2
        seen.append(torch.get_num_threads())
        time.sleep(0.05 if torch.get_num_threads() == 1 else 0.001)

    assert fastest_threads(step, [1, 2]) == 2
    assert torch.get_num_threads() == before
    assert set(seen) == {1, 2}
    assert fastest_threads(step, [3]) == 3  # one candidate: nothing to time
    assert 1 in thread_candidates() and max(thread_candidates()) <= torch.get_num_threads()


def test_quick_threads_guesses_among_the_candidates_and_restores_the_setting() -> None:
    before = torch.get_num_threads()
    assert quick_threads([1, 2]) in (1, 2) and quick_threads([2]) == 2
    assert torch.get_num_threads() == before


def test_thread_trial_runs_fastest_threads_schedule_on_the_callers_steps(monkeypatch) -> None:
    """Round 1: a warm-up and 2 timed steps per candidate; round 2: 3 timed steps each; then
    every later step at the fastest. A candidate 3x slower than the best is dropped at once.
    Step times come from a fake clock: the step at n threads takes ``cost[n]`` seconds."""
    now = [0.0]
    monkeypatch.setattr(groups, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    before = torch.get_num_threads()

    def run(cost: dict[int, float], steps: int) -> tuple[ThreadTrial, list[int]]:
        trial, seen = ThreadTrial([1, 2]), []
        for _ in range(steps):
            trial.begin()
            seen.append(torch.get_num_threads())
            now[0] += cost[torch.get_num_threads()]
            trial.end()
        return trial, seen

    try:
        trial, seen = run({1: 0.004, 2: 0.002}, 16)
        assert seen == [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]
        assert trial.chosen == 2 and trial.steps == 12 and torch.get_num_threads() == 2
        assert trial.best == pytest.approx({1: 0.004, 2: 0.002})
        trial, seen = run({1: 0.002, 2: 0.05}, 9)  # 2 is 25x slower: dropped at its warm-up
        assert seen == [1, 1, 1, 2, 1, 1, 1, 1, 1] and trial.chosen == 1 and trial.steps == 7
        trial, seen = run({1: 0.002, 2: 0.002}, 13)  # a tie: the fewer threads
        assert trial.chosen == 1 and seen[-1] == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="at least one candidate"):
        ThreadTrial([])


def test_training_picks_threads_on_its_first_steps_without_changing_results(data) -> None:
    """The thread count trial runs on the real steps: the results equal those trained on a
    fixed thread count (values do not depend on it here), and the setting is restored."""
    runs = [Run(e, s) for e in resolve_entries(["kaiming", "xavier"]) for s in range(2)]
    config = TrainConfig(epochs=2, batch_size=32)  # 20 steps: the trial ends in epoch 2
    before = torch.get_num_threads()
    free = train_runs(lambda: build_model("mlp:widths=32", (16,), 3), runs, data, config)
    assert torch.get_num_threads() == before
    torch.set_num_threads(1)
    try:
        fixed = train_runs(lambda: build_model("mlp:widths=32", (16,), 3), runs, data, config)
    finally:
        torch.set_num_threads(before)
    assert [r.metrics for r in free] == [r.metrics for r in fixed]


class _Normed(nn.Module):
    """LayerNorm has no stacked form: vmap trains it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.fc(x)))


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic:n=400,dim=16,classes=3,seed=1")


def _probe(factory):
    runs = [Run(e, 0) for e in resolve_entries(["kaiming", "xavier"])]
    return [build_run_model(factory, r.entry, r.seed) for r in runs]


def test_plan_picks_stacked_for_the_zoo_and_vmap_otherwise(data) -> None:
    config = TrainConfig(batch_size=32)
    for spec in ("mlp", "deep:depth=20,width=32", "resmlp:depth=2,width=16"):
        plan = plan_vectorised(_probe(lambda s=spec: build_model(s, (16,), 3)), 6, data, config)
        assert (plan.engine, plan.group_size, plan.problem) == ("stacked", 6, None), spec
        assert plan.threads is None  # chosen on the first training steps
    plan = plan_vectorised(_probe(_Normed), 6, data, config, group_size=4, threads=1)
    assert (plan.engine, plan.group_size, plan.threads) == ("vmap", 4, 1)


def test_vmap_engine_still_equals_sequential(data) -> None:
    runs = [Run(e, s) for e in resolve_entries(["kaiming", "xavier"]) for s in range(2)]
    config = TrainConfig(epochs=2, batch_size=32)
    vec = train_runs(_Normed, runs, data, config, group_size=3)
    seq = train_runs(_Normed, runs, data, config, vectorised=False)
    assert [r.group_size for r in vec] == [3, 3, 3, 1] and {r.mode for r in vec} == {"vectorised"}
    for a, b in zip(vec, seq, strict=True):
        for m in ("train_loss", "val_loss", "val_acc"):
            assert a.metrics[m] == pytest.approx(b.metrics[m], rel=1e-4, abs=1e-7)
