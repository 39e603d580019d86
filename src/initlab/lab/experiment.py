"""The Python API of the lab: ``compare(...)`` trains one network under many entries.

>>> from initlab.lab.experiment import compare
>>> res = compare(entries=["xavier", "kaiming"], seeds=3, epochs=5, out="runs/x")  # doctest: +SKIP
>>> res.stats[0].entry, res.paths["html"]  # doctest: +SKIP

The default run (:data:`PRESETS` ``"depth"``) is one where the initialisation decides the
outcome: a plain 20-layer ReLU network of width 128 (no normalisation, no residuals) on
scikit-learn's digits, trained 10 epochs by SGD (momentum 0.9, lr 0.01, batch 64), where
variance-preserving ReLU inits (Kaiming; He et al. 2015, https://arxiv.org/abs/1502.01852)
train and Xavier-like ones stall. The 11 :data:`~initlab.lab.entries.DEFAULT_ENTRIES`, 3 seeds
each, all 33 runs trained together as one vmapped model. ``preset="seeds"`` is the seeds'
shallow experiment instead: the 64 -> 256 -> 128 -> 10 ReLU MLP, 10 epochs of Adam (lr 1e-3),
where the good inits all tie. With
``out`` the runs land in ``out/runs.jsonl`` as they finish (finished runs there are skipped on
a re-run) and the report (tables, curves, ``report.md``, ``report.html``) is written next to
them. Under ``torchrun`` the runs are shared among the processes
(:mod:`initlab.lab.process_group`).
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..diagnostics import compare_schemes, plot_propagation
from ..sources.inputs import example_inputs
from ..specs import build_model
from ..zoo import ModelError
from . import process_group as dist_
from .data import Dataset, load_dataset
from .entries import Entry, resolve_entries
from .palette import entry_colors
from .report_pages import write_report
from .results import (
    RunResult,
    append_results,
    load_results,
    make_run_id,
    results_table,
    to_dataframe,
)
from .stats import EntryStats, summarise
from .trainer import ProgressFn, Run, TrainConfig, build_run_model, train_runs
from .verdict import Verdict, decide

__all__ = ["DEFAULTS", "PRESETS", "ComparisonResult", "compare", "report"]

#: named settings of :func:`compare` (``initlab compare --preset NAME``); see the module doc
PRESETS: dict[str, dict[str, Any]] = {
    "depth": {
        "model": "deep:depth=20,width=128,activation=relu",
        "dataset": "digits",
        "seeds": 3,
        "epochs": 10,
        "optimizer": "sgd",
        "lr": 0.01,
        "batch_size": 64,
    },
    "seeds": {
        "model": "mlp",
        "dataset": "digits",
        "seeds": 3,
        "epochs": 10,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 64,
    },
}
#: the defaults of :func:`compare` (and of ``initlab compare``): the ``depth`` preset
DEFAULTS: dict[str, Any] = PRESETS["depth"]


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

    ``repr`` is a short summary (the top five entries); ``verdict`` the best, tied, worse and
    failed entries (:mod:`initlab.lab.verdict`).

    Example:
        >>> res = compare("mlp:widths=8", "synthetic:n=120,dim=4,classes=2",
        ...               ["xavier", "kaiming"], seeds=1, epochs=1, progress=False)
        >>> print(repr(res).splitlines()[0])
        ComparisonResult: 2 entries x 1 seeds (2 runs, 2 trained now)
    """

    results: list[RunResult] = dataclasses.field(repr=False)
    stats: list[EntryStats] = dataclasses.field(repr=False)
    out: Path | None = None
    paths: dict[str, Path] = dataclasses.field(default_factory=dict, repr=False)
    trained: int = 0
    skipped: int = 0

    @property
    def verdict(self) -> Verdict:
        """Best, tied, worse and failed entries (:func:`initlab.lab.verdict.decide`)."""
        return decide(self.results, self.stats)

    def _lines(self) -> list[str]:
        seeds = max((len(s.seeds) for s in self.stats), default=0)
        head = (f"ComparisonResult: {len(self.stats)} entries x {seeds} seeds "
                f"({len(self.results)} runs, {self.trained} trained now)")  # fmt: skip
        if self.out is not None:
            head += f", report in {self.out}"
        rows = []
        for s in self.stats[:5]:
            acc = s.metrics["final"].get("val_acc")
            text = "n/a" if acc is None or acc.n == 0 else f"{100 * acc.mean:.1f}%"
            rows.append(f"  #{s.rank} {s.entry}: final val acc {text}")
        if len(self.stats) > 5:
            rows.append(f"  ... {len(self.stats) - 5} more (.stats)")
        return [head, *rows]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        head, *rows = self._lines()
        items = "".join(f"<li>{html.escape(r.strip())}</li>" for r in rows)
        return (f"<div><b>{html.escape(head)}</b><ul>{items}</ul>"
                f"<p>{html.escape(self.verdict.text)}</p></div>")  # fmt: skip

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
            "verdict": self.verdict.to_dict(),
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


def _data_facts(data: Dataset) -> dict[str, Any]:
    """Sizes and the chance rate (the most frequent validation class's share), for the verdict."""
    counts = torch.bincount(data.y_val, minlength=data.num_classes)
    chance = float(counts.max()) / max(data.n_val, 1)
    return {"n_train": data.n_train, "n_val": data.n_val, "classes": data.num_classes,
            "chance": round(chance, 6)}  # fmt: skip


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
            ``resmlp``) or a user factory (``pkg.mod:factory``, ``file.py:factory``); the
            defaults are :data:`PRESETS` ``"depth"`` (``initlab compare --preset seeds`` for
            the shallow MLP with Adam).
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

    Returns:
        A :class:`ComparisonResult`.

    Raises:
        EntryError, ModelError, RefError, DatasetError, ValueError: bad inputs, before
            any training.

    Example:
        >>> res = compare("mlp:widths=8", "synthetic:n=120,dim=4,classes=2",
        ...               ["xavier", "zeros"], seeds=3, epochs=1, progress=False)
        >>> sorted(s.entry for s in res.stats), res.verdict.n_seeds
        (['xavier', 'zeros'], 3)
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
        probe = factory()  # a bad spec fails here, before any training
    if "input_ids" in (example_inputs(probe, 1) or {}):
        raise ModelError(
            f"model {model!r} takes token ids, and compare trains a classifier on a data set's "
            f"examples; measure it at init with: initlab diagnose -m {model!r}"
        )
    context = {"model": model, "dataset": data_spec, "image": bool(image), "limit": limit}
    base = {**context, **config.to_dict()}
    runs = [Run(e, s, make_run_id(base, e.config, s)) for e in entry_list for s in seed_list]
    folder = Path(out) if out is not None else None
    # recorded in each result for the verdict; not in the run ids (the data spec decides them)
    context["data"] = _data_facts(data)
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
        plot_propagation(cmp, folder / "propagation.png", title="Signal propagation at init",
                         colors=entry_colors(e.label for e in entries))  # fmt: skip
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

    Args:
        folder: a folder ``compare`` wrote into.
        notify: receives one-line notices (default: stderr).

    Returns:
        A :class:`ComparisonResult` (``trained`` 0).

    Raises:
        FileNotFoundError: no ``runs.jsonl`` in ``folder``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = compare("mlp:widths=8", "synthetic:n=120,dim=4,classes=2", ["xavier"],
        ...                 seeds=1, epochs=1, out=tmp, progress=False, notify=print)
        ...     again = report(tmp)
        >>> again.trained, again.skipped, sorted(again.paths)[:3]
        (0, 1, ['accuracy', 'final', 'html'])
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
