"""Training many runs of one architecture: vectorised with ``torch.func``, or one by one.

A *run* is an (entry, seed) pair. Its model is built by the factory under
``torch.manual_seed(seed)`` (in ``fork_rng``: the caller's RNG is untouched), then
``initlab.initialize(model, entry.policy, seed=seed)``; its data order is one permutation of
the training set per epoch from a ``torch.Generator`` seeded by the seed (the last batch may
be smaller). Loss: cross-entropy; optimizer: :class:`TrainConfig` (sgd with momentum, adam,
adamw). Per epoch: training loss (mean of the epoch's batch losses), validation loss and
accuracy; index 0 is at init (training loss over the whole training set, eval mode).

**Vectorised path.** Every run's parameters and buffers are stacked along a new leading
dimension R and one forward per step evaluates the R models on their own batches ``x[R, B,
...]``, giving R losses: with batched layers (:class:`~initlab.lab.stacked.StackedNet`:
``baddbmm`` for Linear, grouped convolutions, ...) when every layer of the model has a stacked
form, else with ``torch.func.vmap(functional_call)``. The losses' *sum* is backpropagated:
d(sum)/d(loss_r) = 1, so the gradient in run r's slice is exactly run r's own gradient, and a
NaN or inf in one run stays in that run's slice. The optimizer (torch's fused kernels,
:mod:`initlab.lab.optim`) then steps on the stacked leaf tensors. That is exact because SGD
(momentum, L2 weight decay) and Adam/AdamW update every element from its own gradient, its own
state and scalar hyper-parameters; the step count is shared but equal for all runs. Optimizers
that look across the elements of a tensor (LARS/LAMB trust ratios, Adafactor, Muon,
``clip_grad_norm_``) would couple the runs and are not offered. BatchNorm works in training
mode: its running statistics are stacked buffers that each run updates in its own slice. The
batched matmuls sum in another order than the plain loop's: the two paths agree to ~1e-6
relative per step (the tests allow 1e-4 after three epochs). Runs train in groups
(:func:`plan_vectorised`): as many as fit a memory budget, on the thread count that measured
fastest on their first steps.

**Fallback.** Before training, a probe runs the stacked forward and backward on one batch
and compares run 0 with the plain module (eval-mode outputs, buffers after a training
forward). If vmap cannot handle the model (data-dependent control flow, ``.item()``, buffers
reassigned rather than updated in place, parameters of different shapes), the runs train on
the sequential path and one line says why. ``vectorised=False`` forces it. Dropout masks
differ between the paths (vmap's ``randomness="different"`` versus the global RNG).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..diagnostics import lsuv_
from ..execute import initialize
from .data import Dataset
from .entries import LSUV_BATCH, Entry
from .groups import (
    ThreadTrial,
    memory_budget,
    quick_threads,
    run_bytes,
    runs_per_group,
    thread_candidates,
    torch_threads,
)
from .optim import FusedOptimizer, fused_available
from .results import RunResult, make_run_id
from .stacked import StackedNet, stack_problem

__all__ = [
    "OPTIMIZERS",
    "Run",
    "TrainConfig",
    "VectorPlan",
    "build_run_model",
    "plan_vectorised",
    "train_runs",
    "vmap_problem",
]

OPTIMIZERS = ("sgd", "adam", "adamw")

ProgressFn = Callable[[int, int], None]
"""``progress(advance, total)``: ``advance`` more run-steps done out of ``total``."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How every run trains.

    Attributes:
        epochs: passes over the training set.
        optimizer: ``"sgd"`` (with ``momentum``), ``"adam"`` or ``"adamw"``.
        lr: learning rate.
        batch_size: examples per step.
        momentum: SGD momentum (unused by Adam).
        weight_decay: the optimizer's own (element-wise) weight decay.
        device: where the models and data live.
        eval_batch_size: examples per evaluation chunk (0: ``max(batch_size, 512)``).
    """

    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 0.0
    device: str = "cpu"
    eval_batch_size: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        for key, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for results and run ids)."""
        return dataclasses.asdict(self)

    @property
    def eval_chunk(self) -> int:
        """Examples per evaluation chunk."""
        return self.eval_batch_size or max(self.batch_size, 512)


@dataclasses.dataclass(frozen=True)
class Run:
    """One (entry, seed) pair to train; ``run_id`` is filled in by :func:`train_runs` if empty."""

    entry: Entry
    seed: int
    run_id: str = ""


def make_optimizer(
    params: Sequence[Tensor], config: TrainConfig
) -> FusedOptimizer | torch.optim.Optimizer:
    """The optimizer of ``config`` over ``params`` (element-wise, hence exact when stacked):
    torch's fused kernels through :class:`~initlab.lab.optim.FusedOptimizer` (the numbers of
    torch.optim's ``fused=True``, without its first-step import of ``torch._dynamo``), else
    (float64) torch.optim's own loop."""
    params = [p for p in params if p.requires_grad]
    if fused_available(params):  # one element-wise kernel per step (on both paths)
        momentum = config.momentum if config.optimizer == "sgd" else 0.0
        return FusedOptimizer(params, config.optimizer, config.lr, momentum, config.weight_decay)
    kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        cls: type[torch.optim.Optimizer] = torch.optim.SGD
        kwargs["momentum"] = config.momentum
    else:
        cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, **kwargs)


def build_run_model(
    model_factory: Callable[[], nn.Module],
    entry: Entry,
    seed: int,
    device: str = "cpu",
    data: Dataset | None = None,
) -> nn.Module:
    """The run's model: built under ``torch.manual_seed(seed)`` (RNG state restored after),
    initialised by the entry's policy with ``seed``, then (``entry.data_init == "lsuv"``)
    LSUV on the first ``LSUV_BATCH`` training examples of the run's data order, moved to
    ``device``.

    All of it on one torch thread: the small kernels of a build do not wait for a second
    thread that another process holds (the 3 orthogonal runs of the default comparison took
    3-12 s to build on two threads of a loaded 2-core machine, 0.07 s on one), and what the
    keyed schemes do not pin themselves (LSUV's statistics, a user factory's own ops) does not
    depend on the machine's cores either (keyed orthogonal fills factorise on one thread in
    the scheme itself)."""
    if entry.data_init not in (None, "lsuv"):
        raise ValueError(f"unknown data-dependent init {entry.data_init!r}")
    if entry.data_init == "lsuv" and data is None:
        raise ValueError(f"entry {entry.label!r} needs training data for LSUV")
    with torch_threads(1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = model_factory()
        initialize(model, entry.policy, seed=seed)
        model = model.to(device)
        if data is not None and entry.data_init == "lsuv":
            first_epoch = next(_orders(seed, data.x_train.shape[0], data.x_train.device))
            batch = data.x_train[first_epoch[:LSUV_BATCH]].to(device)
            lsuv_(model, batch, orthonormal_preinit=False)
    return model


def _batches(n: int, batch_size: int) -> list[slice]:
    return [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _orders(seed: int, n: int, device: torch.device) -> Iterator[Tensor]:
    g = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randperm(n, generator=g).to(device)


#: the most bytes of training examples gathered at once (a few steps' batches for all runs)
GATHER_BYTES = 32 * 2**20


def _blocks(batches: list[slice], step_bytes: int) -> Iterator[list[slice]]:
    """Consecutive batches in blocks of at most ``GATHER_BYTES`` (at least one batch)."""
    per = max(1, GATHER_BYTES // max(step_bytes, 1))
    yield from (batches[i : i + per] for i in range(0, len(batches), per))


def _chunks(x: Tensor, y: Tensor, size: int) -> Iterator[tuple[Tensor, Tensor]]:
    yield from ((x[s : s + size], y[s : s + size]) for s in range(0, x.shape[0], size))


# --------------------------------------------------------------------------- vectorised


class _Vmapped:
    """R models as stacked state and vmapped loss/logits functions of one meta-device copy:
    the general form, for models :class:`~initlab.lab.stacked.StackedNet` does not cover."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        from torch.func import functional_call, stack_module_state, vmap  # only where used

        self.params, self.buffers = stack_module_state(list(models))
        self.base = copy.deepcopy(models[0]).to("meta")
        self.size = len(models)

        def logits(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.base, (p, b), (x,))

        def loss(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(logits(p, b, x), y)

        self._loss = vmap(loss, randomness="different")
        self._logits_shared = vmap(logits, in_dims=(0, 0, None), randomness="different")

    def train(self, mode: bool = True) -> _Vmapped:
        self.base.train(mode)
        return self

    def eval(self) -> _Vmapped:
        return self.train(False)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return self._loss(self.params, self.buffers, x, y)

    def logits_shared(self, x: Tensor) -> Tensor:
        return self._logits_shared(self.params, self.buffers, x)


Engine = StackedNet | _Vmapped
"""R runs trained together: ``params``/``buffers`` ``[R, ...]``, ``loss(x[R, B], y[R, B])``
-> ``[R]``, ``logits_shared(x[B])`` -> ``[R, B, C]``, ``train()``/``eval()``."""


def _evaluate_all(engine: Engine, x: Tensor, y: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Mean loss [R] and accuracy [R] on (x, y), eval mode; every run sees the same chunks."""
    engine.eval()
    size = engine.size
    loss = torch.zeros(size, dtype=torch.float64, device=x.device)
    correct = torch.zeros(size, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for xc, yc in _chunks(x, y, chunk):
            out = engine.logits_shared(xc)  # [R, c, C]
            losses = F.cross_entropy(out.flatten(0, 1), yc.repeat(size), reduction="none")
            loss += losses.view(size, -1).double().sum(1)
            correct += (out.argmax(-1) == yc).double().sum(1)
    n = max(int(y.shape[0]), 1)
    return loss / n, correct / n


def _problem(
    make: Callable[[Sequence[nn.Module]], Engine],
    models: Sequence[nn.Module],
    data: Dataset,
    config: TrainConfig,
) -> str | None:
    """Runs ``make(models)``'s loss and backward on one batch (on copies: nothing is changed)
    and compares run 0 with the plain module: eval-mode outputs and buffers after one training
    forward. None when they agree, else why not (one line)."""
    n = min(config.batch_size, data.n_train)
    x, y = data.x_train[:n], data.y_train[:n]
    try:
        engine = make([copy.deepcopy(m) for m in models]).train()
        xs = x.unsqueeze(0).expand(engine.size, *x.shape)
        ys = y.unsqueeze(0).expand(engine.size, *y.shape)
        engine.loss(xs, ys).sum().backward()
        plain = copy.deepcopy(models[0]).train()
        with torch.no_grad():
            plain(x)
        for name, buf in plain.named_buffers():
            if buf.is_floating_point() and not torch.allclose(
                engine.buffers[name][0], buf, rtol=1e-4, atol=1e-6, equal_nan=True
            ):
                return f"buffer {name!r} changes in forward in a way the vectorised form misses"
        engine.eval()
        plain.eval()
        with torch.no_grad():
            ours = engine.logits_shared(x)[0]
            theirs = plain(x)
        if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5, equal_nan=True):
            return "vectorised outputs differ from the plain module's"
    except Exception as e:  # vmap's own errors are RuntimeErrors of many kinds
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {first[:160]}"
    return None


def vmap_problem(models: Sequence[nn.Module], data: Dataset, config: TrainConfig) -> str | None:
    """Why these models cannot train vectorised with ``torch.func.vmap`` (one line), or None.

    Runs the vmapped loss and backward on one batch (on copies: nothing is changed) and
    compares run 0 with the plain module: eval-mode outputs and buffers after one training
    forward. A mismatch means the model does something vmap does not see (e.g. a buffer
    reassigned in forward).
    """
    return _problem(_Vmapped, models, data, config)


@dataclasses.dataclass(frozen=True)
class VectorPlan:
    """How a grid trains vectorised (:func:`plan_vectorised`).

    Attributes:
        engine: ``"stacked"`` (:class:`~initlab.lab.stacked.StackedNet`), ``"vmap"``, or
            ``"sequential"`` when neither reproduces the plain module (``problem`` says why).
        group_size: runs trained together.
        threads: torch threads while training; None: the fastest on the first training steps
            (:class:`~initlab.lab.groups.ThreadTrial`).
        per_run_bytes: the memory one run needs in a group (:func:`~initlab.lab.groups.run_bytes`).
        problem: why the runs cannot train vectorised, or None.
    """

    engine: str
    group_size: int
    threads: int | None
    per_run_bytes: int
    problem: str | None = None

    @property
    def make(self) -> Callable[[Sequence[nn.Module]], Engine] | None:
        """The engine's constructor (None: sequential)."""
        return {"stacked": StackedNet, "vmap": _Vmapped}.get(self.engine)


def plan_vectorised(
    probe: Sequence[nn.Module],
    runs: int,
    data: Dataset,
    config: TrainConfig,
    *,
    group_size: int | None = None,
    threads: int | None = None,
) -> VectorPlan:
    """The engine, group size and thread count for ``runs`` runs of the architecture of
    ``probe`` (two built runs; they are not changed).

    Engine: stacked layers when every layer of the model has a stacked form, else vmap, each
    checked against the plain module on one batch (:func:`vmap_problem`; one thread: its
    kernels are tiny, and two threads fighting another process for the cores made it 1 s
    instead of 0.05). Group size: ``group_size``, or as many runs as fit
    :func:`~initlab.lab.groups.memory_budget`. Threads: ``threads``; else on CPU None, for
    :func:`train_runs` to pick the fastest of :func:`~initlab.lab.groups.thread_candidates` on
    the first training steps (:class:`~initlab.lab.groups.ThreadTrial`).
    """
    with torch_threads(1):
        per_run = run_bytes(probe[0], data.x_train[0], config.batch_size, config.eval_chunk)
        engine, problem = "sequential", None
        if stack_problem(probe[0]) is None and _problem(StackedNet, probe, data, config) is None:
            engine = "stacked"
        else:
            problem = vmap_problem(probe, data, config)
            engine = "vmap" if problem is None else "sequential"
    size = group_size or runs_per_group(runs, per_run, memory_budget())
    size = max(1, min(size, runs))
    n: int | None = threads or torch.get_num_threads()
    if engine != "sequential" and threads is None and data.x_train.device.type == "cpu":
        n = None
    return VectorPlan(engine, size, n, per_run, problem)


def _train_vectorised(
    engine: Engine,
    runs: Sequence[Run],
    data: Dataset,
    config: TrainConfig,
    tick: Callable[[int], None],
    threads: ThreadTrial,
) -> list[dict[str, list[float]]]:
    device = data.x_train.device
    size = engine.size
    opt = make_optimizer(list(engine.params.values()), config)
    orders = [_orders(r.seed, data.n_train, device) for r in runs]
    train0, _ = _evaluate_all(engine, data.x_train, data.y_train, config.eval_chunk)
    val_loss, val_acc = _evaluate_all(engine, data.x_val, data.y_val, config.eval_chunk)
    history = {"train_loss": [train0], "val_loss": [val_loss], "val_acc": [val_acc]}
    batches = _batches(data.n_train, config.batch_size)
    row_bytes = data.x_train[:1].nelement() * data.x_train.element_size()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(runs[0].seed)
        for _ in range(config.epochs):
            perms = torch.stack([next(o) for o in orders])  # [R, N]
            total = torch.zeros(size, dtype=torch.float64, device=device)
            engine.train()
            for block in _blocks(batches, size * config.batch_size * row_bytes):
                # one gather for several steps: each run's examples in its own order, [R, n, ...]
                span = slice(block[0].start, block[-1].stop)
                xs, ys = data.x_train[perms[:, span]], data.y_train[perms[:, span]]
                for sl in block:
                    local = slice(sl.start - span.start, sl.stop - span.start)
                    threads.begin()
                    losses = engine.loss(xs[:, local], ys[:, local])
                    opt.zero_grad(set_to_none=True)
                    losses.sum().backward()
                    opt.step()
                    threads.end()
                    total += losses.detach().double()
                    tick(size)
            history["train_loss"].append(total / len(batches))
            val_loss, val_acc = _evaluate_all(engine, data.x_val, data.y_val, config.eval_chunk)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
    stacked_hist = {k: torch.stack(v, dim=1).cpu() for k, v in history.items()}  # [R, E+1]
    return [{k: [float(v) for v in t[r]] for k, t in stacked_hist.items()} for r in range(size)]


# --------------------------------------------------------------------------- sequential


def _evaluate(model: nn.Module, x: Tensor, y: Tensor, chunk: int) -> tuple[float, float]:
    model.eval()
    loss = correct = 0.0
    with torch.no_grad():
        for xc, yc in _chunks(x, y, chunk):
            out = model(xc)
            loss += float(F.cross_entropy(out, yc, reduction="none").double().sum())
            correct += float((out.argmax(-1) == yc).double().sum())
    n = max(int(y.shape[0]), 1)
    return loss / n, correct / n


def _train_one(
    model: nn.Module, run: Run, data: Dataset, config: TrainConfig, tick: Callable[[int], None]
) -> dict[str, list[float]]:
    opt = make_optimizer(list(model.parameters()), config)
    order = _orders(run.seed, data.n_train, data.x_train.device)
    chunk = config.eval_chunk
    train0, _ = _evaluate(model, data.x_train, data.y_train, chunk)
    val_loss, val_acc = _evaluate(model, data.x_val, data.y_val, chunk)
    hist = {"train_loss": [train0], "val_loss": [val_loss], "val_acc": [val_acc]}
    batches = _batches(data.n_train, config.batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        for _ in range(config.epochs):
            perm = next(order)
            total = torch.zeros((), dtype=torch.float64, device=data.x_train.device)
            model.train()
            for sl in batches:
                idx = perm[sl]
                loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach().double()
                tick(1)
            hist["train_loss"].append(float(total) / len(batches))
            val_loss, val_acc = _evaluate(model, data.x_val, data.y_val, chunk)
            hist["val_loss"].append(val_loss)
            hist["val_acc"].append(val_acc)
    return hist


# --------------------------------------------------------------------------- entry point


def _status(metrics: dict[str, list[float]]) -> str:
    finite = all(math.isfinite(v) for k in ("train_loss", "val_loss") for v in metrics[k])
    return "ok" if finite else "diverged"


def train_runs(
    model_factory: Callable[[], nn.Module],
    runs: Sequence[Run],
    dataset: Dataset,
    config: TrainConfig,
    *,
    vectorised: bool = True,
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    context: dict[str, Any] | None = None,
    group_size: int | None = None,
) -> list[RunResult]:
    """Train every run and return their results, in the order of ``runs``.

    Args:
        model_factory: builds a fresh model (same architecture every call).
        runs: the (entry, seed) pairs.
        dataset: the data; moved to ``config.device``.
        config: epochs, optimizer, lr, batch size, device.
        vectorised: train the runs together with ``torch.func`` (falls back to sequential,
            with a notice, when the model cannot be vmapped); False: one run at a time.
        progress: called as ``progress(advance, total)`` in run-steps.
        notify: receives one-line notices (default: printed to stderr).
        on_result: called with each result as soon as it exists (e.g. to store it).
        context: extra config recorded in each result and its run id (model and data specs).
        group_size: the most runs trained together at once (None: as many as fit half the
            available memory, :mod:`initlab.lab.groups`).
    """
    notify = notify or (lambda message: print(message, file=sys.stderr, flush=True))
    runs = list(runs)
    data = dataset.to(config.device)
    base = {**(context or {}), **config.to_dict()}
    total_steps = len(_batches(data.n_train, config.batch_size)) * config.epochs * len(runs)
    tick = (lambda k: progress(k, total_steps)) if progress is not None else (lambda k: None)
    results: list[RunResult] = []

    def finish(group: Sequence[Run], metrics: list[dict[str, list[float]]], seconds: float,
               mode: str) -> None:  # fmt: skip
        for run, hist in zip(group, metrics, strict=True):
            result = RunResult(
                run_id=run.run_id or make_run_id(base, run.entry.config, run.seed),
                entry=run.entry.label,
                entry_config=dict(run.entry.config),
                seed=run.seed,
                config=dict(base),
                metrics=hist,
                wall_time=seconds / len(group),
                status=_status(hist),
                mode=mode,
                group_size=len(group),
            )
            results.append(result)
            if on_result is not None:
                on_result(result)

    if not runs:
        return results
    if vectorised and len(runs) > 1:
        t0 = time.perf_counter()
        probe = [
            build_run_model(model_factory, r.entry, r.seed, config.device, data) for r in runs[:2]
        ]
        plan = plan_vectorised(probe, len(runs), data, config, group_size=group_size)
        if plan.make is not None:
            size = plan.group_size
            # the thread count: the plan's, or the fastest on the first steps (of the first
            # group); before them (the evaluation at init, the trial's first steps) a quick guess
            candidates = [plan.threads] if plan.threads else thread_candidates()
            guess = quick_threads(candidates)
            trial = ThreadTrial(sorted(candidates, key=lambda n: n != guess))
            built = dict(enumerate(probe))  # runs 0 and 1, built for the plan and unchanged
            with torch_threads(guess):
                for start in range(0, len(runs), size):
                    group = runs[start : start + size]
                    models = [
                        m if (m := built.pop(start + i, None)) is not None
                        else build_run_model(model_factory, r.entry, r.seed, config.device, data)
                        for i, r in enumerate(group)
                    ]  # fmt: skip
                    hist = _train_vectorised(plan.make(models), group, data, config, tick, trial)
                    finish(group, hist, time.perf_counter() - t0, "vectorised")
                    t0 = time.perf_counter()
            return results
        notify(f"initlab: training sequentially, this model cannot be vmapped ({plan.problem})")
    for run in runs:
        t0 = time.perf_counter()
        model = build_run_model(model_factory, run.entry, run.seed, config.device, data)
        hist = _train_one(model, run, data, config, tick)
        finish([run], [hist], time.perf_counter() - t0, "sequential")
    return results
