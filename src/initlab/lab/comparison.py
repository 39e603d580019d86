"""The Python API of the lab: ``compare(...)`` trains one network under many entries.

>>> from initlab.lab.comparison import compare
>>> res = compare(entries=["xavier", "kaiming"], seeds=3, epochs=5, out="runs/x")  # doctest: +SKIP
>>> res.stats[0].entry, res.paths["html"]  # doctest: +SKIP

The default run is the seeds' experiment made honest: the 64 -> 256 -> 128 -> 10 ReLU MLP on
scikit-learn's digits, the 11 :data:`~initlab.lab.entries.DEFAULT_ENTRIES`, 3 seeds each, 10
epochs of Adam (lr 1e-3, batch 64), all 33 runs trained together as one vmapped model. With
``out`` the runs land in ``out/runs.jsonl`` as they finish (finished runs there are skipped on
a re-run) and the report (tables, curves, ``report.md``, ``report.html``) is written next to
them. Under ``torchrun`` the runs are shared among the processes
(:mod:`initlab.lab.distributed`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from . import distributed as dist_
from .data import Dataset, load_dataset
from .entries import Entry, resolve_entries
from .models import build_model
from .reporting import write_report
from .results import (
    RunResult,
    append_results,
    load_results,
    make_run_id,
    results_table,
    to_dataframe,
)
from .stats import EntryStats, summarise
from .trainer import ProgressFn, Run, TrainConfig, train_runs

__all__ = ["DEFAULTS", "ComparisonResult", "compare", "report"]

#: the defaults of :func:`compare` (and of ``initlab compare``)
DEFAULTS: dict[str, Any] = {
    "model": "mlp",
    "dataset": "digits",
    "seeds": 3,
    "epochs": 10,
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 64,
}


@dataclasses.dataclass
class ComparisonResult:
    """What :func:`compare` (or :func:`report`) returns.

    Attributes:
        results: one :class:`RunResult` per (entry, seed) of this comparison.
        stats: per-entry statistics, ranked (:func:`initlab.lab.stats.summarise`).
        out: the output folder, or None.
        paths: the files written (``results``, ``loss``, ``accuracy``, ``markdown``,
            ``html``, ``summary``).
        trained: runs trained now; ``skipped``: runs found finished in ``out``.
    """

    results: list[RunResult]
    stats: list[EntryStats]
    out: Path | None = None
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    trained: int = 0
    skipped: int = 0

    def table(self) -> list[dict[str, Any]]:
        """Plain rows, one per (run, epoch) (:func:`initlab.lab.results.results_table`)."""
        return results_table(self.results)

    def to_dataframe(self) -> Any:
        """:meth:`table` as a pandas DataFrame (needs pandas)."""
        return to_dataframe(self.results)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the folder, counts, files and ranked statistics."""
        return {
            "out": None if self.out is None else str(self.out),
            "runs": len(self.results),
            "trained": self.trained,
            "skipped": self.skipped,
            "files": {k: str(v) for k, v in self.paths.items()},
            "stats": [s.to_dict() for s in self.stats],
        }


def _seed_list(seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a list of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct non-negative ints, got {out}")
    return out


def _rich_progress() -> tuple[ProgressFn, Callable[[], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]training[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("run-steps", total=None)
    bar.start()

    def update(advance: int, total: int) -> None:
        bar.update(task, advance=advance, total=total)

    return update, bar.stop


def _progress_fn(
    progress: bool | ProgressFn | None,
) -> tuple[ProgressFn | None, Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    if progress:
        return _rich_progress()
    return None, lambda: None


def _check_device(device: str) -> None:
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1, mps)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available in this torch build/machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine")


def _order(results: Iterable[RunResult], runs: Sequence[Run]) -> list[RunResult]:
    by_id = {r.run_id: r for r in results}
    return [by_id[r.run_id] for r in runs if r.run_id in by_id]


def compare(
    model: str = DEFAULTS["model"],
    dataset: str | Dataset = DEFAULTS["dataset"],
    entries: Sequence[str | Entry] | str | None = None,
    seeds: int | Iterable[int] = DEFAULTS["seeds"],
    epochs: int = DEFAULTS["epochs"],
    optimizer: str = DEFAULTS["optimizer"],
    lr: float = DEFAULTS["lr"],
    batch_size: int = DEFAULTS["batch_size"],
    device: str = "cpu",
    out: str | os.PathLike[str] | None = None,
    sequential: bool = False,
    progress: bool | ProgressFn | None = True,
    *,
    image: bool | None = None,
    limit: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> ComparisonResult:
    """Train ``model`` on ``dataset`` under every entry and seed; summarise and report.

    Args:
        model: a model spec (``mlp``, ``cnn:batchnorm=true``, ``deep:depth=30,activation=tanh``,
            ``resmlp``) or a user factory (``pkg.mod:factory``, ``file.py:factory``).
        dataset: a data set spec (``digits``, ``synthetic:n=2000``, ``mnist:/data/mnist``, ...)
            or a loaded :class:`Dataset`.
        entries: entry names (:func:`initlab.lab.entries.resolve_entry`); None: the 11 defaults.
        seeds: a count (seeds 0..n-1) or the seeds themselves.
        epochs, optimizer, lr, batch_size, device: training (:class:`TrainConfig`).
        out: the output folder (runs.jsonl, report); None: write nothing.
        sequential: train one run at a time instead of vectorised.
        progress: True: a rich progress bar on stderr; a callable ``(advance, total)``; False.
        image: load image-shaped inputs (default: True for the ``cnn`` model).
        limit: keep at most this many training examples.
        notify: receives one-line notices (default: stderr).

    Raises:
        EntryError, ModelError, FactoryError, DatasetError, ValueError: bad inputs, before
            any training.
    """
    notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
    _check_device(device)
    entry_list = resolve_entries(entries)
    seed_list = _seed_list(seeds)
    if image is None:
        image = model.partition(":")[0].strip().lower() == "cnn"
    if isinstance(dataset, Dataset):
        data, data_spec = dataset, str(dataset.meta.get("spec", dataset.name))
    else:
        data = load_dataset(dataset, image=image, limit=limit)
        data_spec = str(data.meta.get("spec", dataset))
    config = TrainConfig(epochs=epochs, optimizer=optimizer, lr=float(lr), batch_size=batch_size,
                         device=dist_.local_device(device))  # fmt: skip

    def factory() -> torch.nn.Module:
        return build_model(model, data.input_shape, data.num_classes)

    with torch.random.fork_rng(devices=[]):
        factory()  # a bad spec fails here, before any training
    context = {"model": model, "dataset": data_spec, "image": bool(image), "limit": limit}
    base = {**context, **config.to_dict()}
    runs = [Run(e, s, make_run_id(base, e.config, s)) for e in entry_list for s in seed_list]
    folder = Path(out) if out is not None else None
    kwargs = {"vectorised": not sequential, "notify": notify, "context": context}

    if dist_.is_distributed():
        with dist_.process_group() as (rank, world):
            done = _finished(folder) if rank == 0 else {}
            pending_ids = set(dist_.broadcast([r.run_id for r in runs if r.run_id not in done]))
            pending = [r for r in runs if r.run_id in pending_ids]
            mine = dist_.shard(pending, rank, world)
            show, stop = _progress_fn(progress if rank == 0 else False)
            try:
                local = train_runs(factory, mine, data, config, progress=show, **kwargs)
            finally:
                stop()
            gathered = dist_.gather_results(local)
        if rank != 0 or gathered is None:
            return ComparisonResult(local, summarise(local), None, {}, len(local), 0)
        if folder is not None:
            _propagation_at_init(folder, factory, entry_list, data, seed_list[0], notify)
        gathered = _order(gathered, pending)
        if folder is not None:
            append_results(folder, gathered)
        return _finish(runs, [*done.values(), *gathered], folder, len(gathered))

    done = _finished(folder)
    pending = [r for r in runs if r.run_id not in done]
    if done and pending != runs:
        notify(f"initlab: {len(runs) - len(pending)} of {len(runs)} runs already in {folder}")
    store = (lambda r: append_results(folder, [r])) if folder is not None else None
    show, stop = _progress_fn(progress if pending else False)
    try:
        new = train_runs(factory, pending, data, config, progress=show, on_result=store, **kwargs)
    finally:
        stop()
    if folder is not None:  # after training: its plot (matplotlib) does not delay the first step
        _propagation_at_init(folder, factory, entry_list, data, seed_list[0], notify)
    return _finish(runs, [*done.values(), *new], folder, len(new))


#: validation examples the at-init propagation diagnosis runs on
PROPAGATION_BATCH = 256


def _propagation_at_init(
    folder: Path,
    factory: Callable[[], torch.nn.Module],
    entries: Sequence[Entry],
    data: Dataset,
    seed: int,
    notify: Callable[[str], None],
) -> None:
    """``propagation.png`` / ``propagation.json``: each entry's activation and gradient std per
    layer at init (:func:`initlab.compare_schemes`), on one validation batch, first seed."""
    from ..diagnostics import compare_schemes, plot_propagation
    from .trainer import build_run_model

    def init_for(entry: Entry) -> Callable[[torch.nn.Module], None]:
        def init(model: torch.nn.Module) -> None:
            built = build_run_model(factory, entry, seed, "cpu", data)
            model.load_state_dict(built.state_dict())

        return init

    x, y = data.x_val[:PROPAGATION_BATCH], data.y_val[:PROPAGATION_BATCH]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with torch.random.fork_rng(devices=[]):
            cmp = compare_schemes(factory, {e.label: init_for(e) for e in entries}, x, y,
                                  seed=seed, bins=0, singular_values=False)  # fmt: skip
        plot_propagation(cmp, folder / "propagation.png", title="signal propagation at init")
        cmp.to_json(folder / "propagation.json")
    except (RuntimeError, ValueError) as e:  # a diagnosis problem must not lose the training
        notify(f"initlab: no at-init propagation plot ({type(e).__name__}: {e})")


def _finished(folder: Path | None) -> dict[str, RunResult]:
    if folder is None or not (folder / "runs.jsonl").is_file():
        return {}
    return {r.run_id: r for r in load_results(folder)}


def _finish(
    runs: Sequence[Run], results: Iterable[RunResult], folder: Path | None, trained: int
) -> ComparisonResult:
    ordered = _order(results, runs)
    stats = summarise(ordered)
    paths: dict[str, Path] = {}
    if folder is not None and ordered:
        paths = {"results": folder / "runs.jsonl", **write_report(folder, ordered, stats)}
    return ComparisonResult(ordered, stats, folder, paths, trained, len(ordered) - trained)


def _reported_ids(folder: Path) -> list[str] | None:
    """The run ids ``summary.json`` says the last report covered (None if unknown)."""
    import json

    try:
        ids = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("run_ids")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(i) for i in ids] if isinstance(ids, list) and ids else None


def report(
    folder: str | os.PathLike[str], notify: Callable[[str], None] | None = None
) -> ComparisonResult:
    """Rebuild the tables, curves, ``report.md`` and ``report.html`` from ``folder/runs.jsonl``.

    The report covers the runs the last report in ``folder`` covered (``summary.json`` lists
    their ids), so re-running ``compare`` with other entries or seeds into the same folder and
    then ``report`` gives that comparison's tables again. Without a summary: when the file
    holds runs of several configurations (model, data set, training settings), only those with
    the configuration of the last line are reported, with a notice.

    Raises:
        FileNotFoundError: no ``runs.jsonl`` in ``folder``.
    """
    folder = Path(folder)
    results = load_results(folder)
    if not results:
        raise FileNotFoundError(f"{folder / 'runs.jsonl'} holds no runs")

    def key(r: RunResult) -> str:
        return repr(sorted((k, repr(v)) for k, v in r.config.items() if k != "device"))

    ids = _reported_ids(folder)
    by_id = {r.run_id: r for r in results}
    if ids and all(i in by_id for i in ids):
        chosen = [by_id[i] for i in ids]
    else:
        last = key(results[-1])
        chosen = [r for r in results if key(r) == last]
    if len(chosen) != len(results):
        (notify or (lambda m: print(m, file=sys.stderr)))(
            f"initlab: {len(results) - len(chosen)} runs in {folder} have another configuration "
            "and are left out of the report"
        )
    stats = summarise(chosen)
    paths = {"results": folder / "runs.jsonl", **write_report(folder, chosen, stats)}
    return ComparisonResult(chosen, stats, folder, paths, 0, len(chosen))
