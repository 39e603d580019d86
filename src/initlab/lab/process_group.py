"""Splitting a comparison across processes with ``torch.distributed``.

Launched under ``torchrun`` (``WORLD_SIZE > 1`` in the environment), ``initlab compare``:

1. joins a process group (gloo, which works on CPU and ships with every torch build; it is
   created here unless the caller already made one, and destroyed when done);
2. rank 0 reads which runs the output folder already holds and broadcasts the list of runs
   still to train, so every rank agrees on it even without a shared file system;
3. each rank trains runs ``i`` with ``i % world_size == rank`` (vectorised among themselves);
4. the results travel to rank 0 as JSON strings (``dist.gather_object``); rank 0 appends them
   to ``runs.jsonl`` and writes the report. Other ranks write nothing.

With ``--device cuda`` each rank uses ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from .results import RunResult

__all__ = [
    "broadcast",
    "gather_results",
    "is_distributed",
    "local_device",
    "process_group",
    "shard",
]

T = TypeVar("T")


def is_distributed() -> bool:
    """Whether this process was launched as one of several (``WORLD_SIZE > 1``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def local_device(device: str) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` under torchrun; any other device unchanged."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


@contextlib.contextmanager
def process_group(timeout_minutes: float = 60.0) -> Iterator[tuple[int, int]]:
    """Yield ``(rank, world_size)`` inside a gloo process group (joined from the env).

    Raises:
        RuntimeError: torch was built without distributed support.
    """
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; run without torchrun")
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=datetime.timedelta(minutes=timeout_minutes))
        created = True
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if created:
            dist.destroy_process_group()


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items this rank handles: those at index ``i`` with ``i % world_size == rank``."""
    return [item for i, item in enumerate(items) if i % world_size == rank]


def broadcast(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (picklable objects)."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_results(results: Sequence[RunResult], dst: int = 0) -> list[RunResult] | None:
    """Every rank's results on rank ``dst`` (as JSON lines on the wire); None elsewhere.

    Results come back ordered by rank, then in each rank's order.
    """
    import torch.distributed as dist

    lines = [r.to_json() for r in results]
    rank = dist.get_rank()
    bucket: list[Any] | None = [None] * dist.get_world_size() if rank == dst else None
    dist.gather_object(lines, bucket, dst=dst)
    if bucket is None:
        return None
    return [RunResult.from_json(line) for part in bucket for line in (part or [])]
