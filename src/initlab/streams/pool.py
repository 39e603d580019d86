"""The stream threads: a pool whose threads run torch ops single-threaded.

Chunks write disjoint ranges of a preallocated output, so the pool splits them freely: AES,
numpy ufuncs and torch kernels release the GIL. Values never depend on the thread count.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["get_num_threads", "get_pool", "openmp", "set_num_threads"]

_lock = threading.Lock()
_num_threads = max(1, min(os.cpu_count() or 1, 8))
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int) -> None:
    """Set the threads used by stream fills (values never depend on it).

    Args:
        n: the number of threads, >= 1 (the pool is rebuilt on next use).

    Example:
        >>> before = get_num_threads()
        >>> set_num_threads(2); get_num_threads()
        2
        >>> set_num_threads(before)
    """
    global _num_threads, _pool
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    with _lock:
        if n != _num_threads:
            _num_threads, _pool = n, None  # the old pool's idle workers exit when it is freed


def get_num_threads() -> int:
    """Threads used by stream fills (default: os.cpu_count() capped at 8).

    Returns:
        The number of threads.

    Example:
        >>> 1 <= get_num_threads() <= max(8, os.cpu_count() or 1)
        True
    """
    return _num_threads


def openmp() -> bool:
    """Whether torch's CPU parallel backend is OpenMP (then pool threads run torch single-threaded).

    Returns:
        True for an OpenMP build of torch.

    Example:
        >>> isinstance(openmp(), bool)
        True
    """
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _worker_init(barrier: threading.Barrier, single: bool) -> None:
    if single:
        # OpenMP's team size is per thread: one here keeps torch ops inside this worker
        # single-threaded (no nested teams); the pool's creator restores torch's default.
        # get_num_threads first: torch's lazy per-thread init would later reset it.
        torch.get_num_threads()
        torch.set_num_threads(1)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=60)


def get_pool() -> tuple[ThreadPoolExecutor, int]:
    """The shared thread pool of stream fills, started on first use, and its size.

    Returns:
        ``(executor, threads)``.

    Example:
        >>> pool, n = get_pool()
        >>> n == get_num_threads(), pool.submit(sum, [1, 2]).result()
        (True, 3)
    """
    global _pool
    with _lock:
        if _pool is None:
            n, single = _num_threads, openmp()
            keep = torch.get_num_threads()
            barrier = threading.Barrier(n + 1)
            pool = ThreadPoolExecutor(n, "initlab-stream", _worker_init, (barrier, single))
            for _ in range(n):  # every submit starts a thread: none is idle before the barrier
                pool.submit(int)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            if single:
                torch.set_num_threads(keep)  # the default for threads torch has not yet seen
            _pool = pool
        return _pool, _num_threads


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _lock, _pool
    _lock, _pool = threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
