"""Results as data: one :class:`RunResult` per (entry, seed), stored one JSON line each.

A run's id is a hash of everything that decides its numbers: the model spec, the data set
spec, the training config (optimizer, lr, batch size, epochs, ...), the entry's config (its
canonical spec and its policy's content) and the seed. Re-running a comparison into the same
folder therefore skips the runs whose id is already in ``runs.jsonl`` and trains only the
rest; changing any setting gives new ids.

Each line of ``runs.jsonl`` is one :meth:`RunResult.to_dict`: the run id, entry label and
config, seed, the full config, per-epoch metrics (index 0 is at init, index ``e`` after epoch
``e``; non-finite values are written as ``null``), wall time, library versions and status.
Lines are appended atomically (one ``os.write`` of the whole line on an ``O_APPEND``
descriptor, under an advisory lock where the platform has one), so concurrent writers never
interleave and a killed process leaves at most one truncated last line, which
:func:`load_results` skips with a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .. import __version__

__all__ = [
    "METRICS",
    "RESULTS_FILE",
    "RunResult",
    "append_results",
    "load_results",
    "make_run_id",
    "results_table",
    "to_dataframe",
    "versions",
]

RESULTS_FILE = "runs.jsonl"
#: per-epoch metrics, each a list of ``epochs + 1`` floats (index 0: at init)
METRICS = ("train_loss", "val_loss", "val_acc")


def versions() -> dict[str, str]:
    """The versions of initlab, torch, numpy and Python."""
    import numpy
    import torch

    return {
        "initlab": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_run_id(config: Mapping[str, Any], entry_config: Mapping[str, Any], seed: int) -> str:
    """A 16-hex-digit id of (config incl. model and data set specs, entry config, seed).

    Keys of ``config`` that do not change the numbers (``device``) are left out.
    """
    keep = {k: v for k, v in config.items() if k not in ("device",)}
    text = _canonical({"config": keep, "entry": dict(entry_config), "seed": int(seed)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite_or_none(values: Iterable[float]) -> list[float | None]:
    return [float(v) if v is not None and math.isfinite(v) else None for v in values]


@dataclasses.dataclass
class RunResult:
    """One training run: an entry, a seed, and what happened per epoch.

    Attributes:
        run_id: see :func:`make_run_id`.
        entry: the entry's label.
        entry_config: the entry's config (spec, kind, policy data).
        seed: the init seed (it also seeds the run's data order).
        config: model and data set specs and the training config.
        metrics: ``{"train_loss": [...], "val_loss": [...], "val_acc": [...]}``, each
            ``epochs + 1`` floats; index 0 is measured at init (the train loss there is the
            loss over the whole training set), index ``e`` after epoch ``e`` (the train loss
            there is the mean of the epoch's batch losses). Non-finite values are NaN.
        wall_time: seconds; for runs trained together (vectorised) the group's time divided
            by the number of runs in it.
        versions: library versions (:func:`versions`).
        status: ``"ok"``, or ``"diverged"`` when any loss was non-finite.
        mode: ``"vectorised"`` or ``"sequential"``.
        group_size: how many runs were trained together.
    """

    run_id: str
    entry: str
    entry_config: dict[str, Any]
    seed: int
    config: dict[str, Any]
    metrics: dict[str, list[float]]
    wall_time: float = 0.0
    versions: dict[str, str] = dataclasses.field(default_factory=versions)
    status: str = "ok"
    mode: str = "sequential"
    group_size: int = 1

    @property
    def epochs(self) -> int:
        """The number of training epochs recorded."""
        return len(self.metrics.get("val_loss", [])) - 1

    def final(self, metric: str) -> float:
        """The metric after the last epoch."""
        return self.metrics[metric][-1]

    def at_epoch(self, metric: str, epoch: int) -> float:
        """The metric after ``epoch`` (clamped to the last epoch; 0 is at init)."""
        values = self.metrics[metric]
        return values[min(epoch, len(values) - 1)]

    def __repr__(self) -> str:
        acc = self.metrics.get("val_acc") or [math.nan]
        text = f"{100 * acc[-1]:.1f}%" if math.isfinite(acc[-1]) else "nan"
        return (
            f"RunResult({self.entry!r}, seed {self.seed}, {self.epochs} epochs, final val acc "
            f"{text}, {self.status}, id {self.run_id})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (non-finite metric values become ``None``)."""
        out = dataclasses.asdict(self)
        out["metrics"] = {k: _finite_or_none(v) for k, v in self.metrics.items()}
        return out

    def to_json(self) -> str:
        """One JSON line (no newline), strict JSON (no NaN)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """A result from :meth:`to_dict` data (``None`` metric values come back as NaN).

        Raises ValueError for data that is not a run: not a mapping, or metrics that do not
        hold every one of :data:`METRICS` as equally long, non-empty lists.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("metrics"), Mapping):
            raise ValueError("not a run record (expected an object with 'metrics')")
        lengths = {len(data["metrics"].get(m) or ()) for m in METRICS}
        if not all(isinstance(data["metrics"].get(m), list) for m in METRICS) or (
            len(lengths) != 1 or 0 in lengths
        ):
            raise ValueError(f"metrics must hold {', '.join(METRICS)} as equal, non-empty lists")
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["metrics"] = {
            k: [math.nan if v is None else float(v) for v in vals]
            for k, vals in data["metrics"].items()
        }
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str) -> RunResult:
        """A result from one :meth:`to_json` line."""
        return cls.from_dict(json.loads(line))


def _lock(fd: int, lock: bool) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: O_APPEND alone
        return
    fcntl.flock(fd, fcntl.LOCK_EX if lock else fcntl.LOCK_UN)


def append_results(folder: str | os.PathLike[str], results: Iterable[RunResult]) -> Path:
    """Append results to ``folder/runs.jsonl`` (created with the folder), one atomic line each."""
    path = Path(folder) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for result in results:
            data = (result.to_json() + "\n").encode()
            _lock(fd, True)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a line cut by a crash stays alone (and is skipped)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                _lock(fd, False)
    finally:
        os.close(fd)
    return path


class MalformedLinesWarning(UserWarning):
    """Lines of a results file that were skipped; one warning per file, with the count."""


def load_results(folder: str | os.PathLike[str]) -> list[RunResult]:
    """The results in ``folder/runs.jsonl`` (or a ``.jsonl`` file path), first of each run id.

    Malformed lines (e.g. one cut by a crash, or bytes that are not UTF-8) are skipped and
    counted: one :class:`MalformedLinesWarning` names the file, how many lines were skipped
    and the first one.

    Args:
        folder: a folder holding ``runs.jsonl``, or the path of a ``.jsonl`` file.

    Returns:
        The results, in file order.

    Raises:
        FileNotFoundError: no results file there.
        ValueError: the file has lines but none is a result (not a results file); the
            message names the file.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {folder} (run `initlab compare` there)")
    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as e:
        raise OSError(f"cannot read {path}: {e.strerror or e}") from None
    out: dict[str, RunResult] = {}
    bad: list[tuple[int, str]] = []
    seen = 0
    for i, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        seen += 1
        try:
            result = RunResult.from_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append((i, "not UTF-8 text"))
            continue
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            bad.append((i, " ".join(str(e).split()) or type(e).__name__))
            continue
        out.setdefault(result.run_id, result)
    if bad and len(bad) == seen:
        raise ValueError(
            f"{path}: none of its {seen} lines is a run result (line {bad[0][0]}: {bad[0][1]}); "
            "is it a runs.jsonl written by initlab compare?"
        )
    if bad:
        n = len(bad)
        warnings.warn(
            f"{path}: skipped {n} malformed line{'s' if n > 1 else ''} "
            f"(first: line {bad[0][0]}: {bad[0][1]})",
            MalformedLinesWarning,
            stacklevel=2,
        )
    return list(out.values())


def results_table(results: Iterable[RunResult]) -> list[dict[str, Any]]:
    """One flat row per (run, epoch): run id, entry, seed, status, epoch and the metrics."""
    rows = []
    for r in results:
        for epoch in range(r.epochs + 1):
            row: dict[str, Any] = {"run_id": r.run_id, "entry": r.entry, "seed": r.seed}
            row["status"] = r.status
            row["epoch"] = epoch
            row.update({m: r.metrics[m][epoch] for m in METRICS if m in r.metrics})
            rows.append(row)
    return rows


def to_dataframe(results: Iterable[RunResult]) -> Any:
    """:func:`results_table` as a pandas DataFrame (needs pandas, not a dependency).

    Raises:
        ImportError: pandas is not installed (use :func:`results_table` instead).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_dataframe needs pandas (pip install pandas); results_table() gives plain rows"
        ) from None
    return pd.DataFrame(results_table(results))
