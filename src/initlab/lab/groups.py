"""How many runs train together, and on how many threads: from the model, the data and the machine.

A vectorised group of R runs holds, per run, the parameters with their gradients and two
optimizer moments (4 copies, fp32) and, during a step, the activations of a batch kept for the
backward pass and their gradients; evaluation holds the activations of an evaluation chunk.
:func:`run_bytes` measures the activations with one forward of one example through the plain
model (forward hooks on every leaf module), and :func:`runs_per_group` fits as many runs as a share
of the memory available now (``MemAvailable``), split into equal groups: a 100-run grid of a
big model trains in several groups instead of swapping, and a small grid trains in one.

:func:`fastest_threads` times a few steps at each candidate thread count (1, half, all of the
cores this process may use) and keeps the fastest (:class:`ThreadTrial`: the same choice made
on the first real training steps, which the trainer uses): a small group's kernels are too short to
share among threads (and threads hurt when other processes load the cores), a big group's are
not.

>>> runs_per_group(runs=100, per_run=10**9, budget=8 * 10**9)  # 8 fit: 13 groups of 7-8
8
>>> runs_per_group(runs=6, per_run=10**6, budget=8 * 10**9)
6
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

__all__ = [
    "MEMORY_SHARE",
    "ThreadTrial",
    "available_memory",
    "fastest_threads",
    "memory_budget",
    "quick_threads",
    "run_bytes",
    "runs_per_group",
    "thread_candidates",
    "torch_threads",
]

#: the share of the available memory a vectorised group may use
MEMORY_SHARE = 0.5


def run_bytes(model: nn.Module, example: torch.Tensor, batch_size: int, eval_chunk: int) -> int:
    """Bytes one run needs in a vectorised group (fp32 model, Adam).

    ``4 x parameters`` (values, gradients, two moments) plus the larger of a training step
    (``2 x activations x batch_size``: kept for backward, and their gradients) and an
    evaluation chunk (``activations x eval_chunk``), with the activations per example counted
    by one forward of ``example`` (one example, no batch dimension) through ``model``.
    """
    activations = 0

    def count(_module: nn.Module, _args: object, out: object) -> None:
        nonlocal activations
        if isinstance(out, torch.Tensor):
            activations += out.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example.unsqueeze(0))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    per_example = activations * 4
    return 4 * params + max(2 * per_example * batch_size, per_example * eval_chunk)


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo; else physical)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def memory_budget() -> int:
    """Bytes a vectorised group may use: :data:`MEMORY_SHARE` of :func:`available_memory`."""
    return int(available_memory() * MEMORY_SHARE)


def runs_per_group(runs: int, per_run: int, budget: int) -> int:
    """Runs per group: as many as ``budget`` holds (at least 1), the groups made equal.

    Args:
        runs: runs to train.
        per_run: bytes per run (:func:`run_bytes`).
        budget: bytes for one group (:func:`memory_budget`).
    """
    if runs < 1:
        return 1
    fit = max(1, min(runs, budget // max(per_run, 1)))
    groups = math.ceil(runs / fit)
    return math.ceil(runs / groups)


def thread_candidates() -> list[int]:
    """Thread counts worth trying: 1, half and all of the cores this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    cores = max(1, min(cores, torch.get_num_threads()))
    return sorted({1, max(1, cores // 2), cores})


class ThreadTrial:
    """Chooses the thread count on steps that run anyway: :func:`fastest_threads`, online.

    Call :meth:`begin` before each step (it sets the thread count the step runs at) and
    :meth:`end` after it (it records the step's time). While the trial lasts, the steps cycle
    through ``candidates`` as :func:`fastest_threads` does: per candidate one warm-up step
    (first round only) and ``repeat`` timed steps, two interleaved rounds, a candidate whose
    step takes over 3x the best so far dropped at once. Then :attr:`chosen` is the fastest
    (the smallest on a tie), set for every later step. The trainer times its first real
    training steps this way instead of extra probe steps: on the lab's default run (a 20-layer
    MLP, 33 runs) the probe cost 1.2 s before the first step. One candidate: chosen at once.
    The caller restores the thread setting (:func:`torch_threads`).

    Args:
        candidates: the thread counts to try (:func:`thread_candidates`).
        repeat: timed steps per candidate and round.

    Example:
        >>> trial = ThreadTrial([1, 2])
        >>> while trial.chosen is None:
        ...     trial.begin()
        ...     _ = torch.ones(8).sum()  # a training step
        ...     trial.end()
        >>> trial.chosen in (1, 2), trial.steps <= 12  # 2 rounds x 2 candidates x 3 steps
        (True, True)
        >>> ThreadTrial([3]).chosen
        3
    """

    def __init__(self, candidates: list[int], repeat: int = 2) -> None:
        if not candidates:
            raise ValueError("ThreadTrial needs at least one candidate thread count")
        self.candidates = list(candidates)
        self.repeat = repeat
        self.best = dict.fromkeys(self.candidates, math.inf)
        self.steps = 0
        self.chosen: int | None = self.candidates[0] if len(self.candidates) == 1 else None
        self._schedule = self._plan()
        self._next: int | None = None if self.chosen is not None else next(self._schedule)
        self._t0 = 0.0

    def _plan(self) -> Iterator[int]:
        """Yields each step's thread count and is sent back the step's seconds."""
        alive = list(self.candidates)
        for _ in range(2):
            for n in list(alive):
                for i in range(self.repeat + 1):
                    seconds = yield n
                    if i > 0 or self.best[n] < math.inf:  # the first step of all warms up
                        self.best[n] = min(self.best[n], seconds)
                    if seconds > 3 * min(self.best.values()):
                        alive.remove(n)
                        break

    def begin(self) -> None:
        """Before a step: the thread count it runs at (nothing once chosen)."""
        if self._next is not None:
            torch.set_num_threads(self._next)
            self._t0 = time.perf_counter()

    def end(self) -> None:
        """After a step: its time counts; the last timed step sets :attr:`chosen`."""
        if self._next is None:
            return
        seconds = time.perf_counter() - self._t0
        self.steps += 1
        try:
            self._next = self._schedule.send(seconds)
        except StopIteration:
            self._next = None
            self.chosen = min(self.candidates, key=lambda n: (self.best[n], n))
            torch.set_num_threads(self.chosen)


def fastest_threads(step: Callable[[], object], candidates: list[int], repeat: int = 2) -> int:
    """The thread count among ``candidates`` at which ``step()`` runs fastest.

    Each candidate runs ``step`` once to warm up, then ``repeat`` times; the best time counts
    (the minimum is the least disturbed by other processes). Two interleaved rounds, so that a
    passing load spike does not decide alone; a candidate whose step takes over 3x the best so
    far is dropped at once (threads fighting other processes can be 10x slower). The thread
    setting is restored. :class:`ThreadTrial` is the same choice made on steps that run anyway.
    """
    trial = ThreadTrial(candidates, repeat)
    before = torch.get_num_threads()
    try:
        while trial.chosen is None:
            trial.begin()
            step()
            trial.end()
    finally:
        torch.set_num_threads(before)
    assert trial.chosen is not None  # the loop ran the trial to its end
    return trial.chosen


def quick_threads(candidates: list[int]) -> int:
    """A guess in milliseconds: the thread count among ``candidates`` at which a 256x256
    matrix product runs fastest now (:func:`fastest_threads` on it).

    For the work before a :class:`ThreadTrial` has chosen (the evaluation at init): when other
    processes hold the cores, two threads that wait for each other are slow on any kernel
    (measured: the default run's evaluation at init took 2.1 s on two threads of a 2-core
    machine with one core busy, 0.6 s on one), and on a free machine they are faster on this
    one as on the evaluation's (0.35 s on two). At most 20 products: 5 ms on a free 2-core
    machine, 25 ms with one core busy.

    Args:
        candidates: the thread counts to try (:func:`thread_candidates`).

    Example:
        >>> quick_threads([1, 2]) in (1, 2), quick_threads([3])
        (True, 3)
    """
    a = torch.full((256, 256), 0.5)
    return fastest_threads(lambda: torch.mm(a, a), candidates, repeat=4)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` intra-op threads (None: leave torch's setting), then restore.

    Used by the lab's trainer (the thread count :func:`fastest_threads` picked) and the width
    experiments, whose models are small: their kernels are too short to share among threads,
    and threads that spin while other processes load the cores cost several times the CPU
    (measured: a width-128 GPT-2 step took 6x the CPU time on 2 threads as on 1 on a loaded
    2-core machine). One thread is their default.

    Args:
        n: the thread count, or None.

    Example:
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"threads must be a positive integer, got {n!r}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
