"""Benchmark ``initlab compare``: vectorised against sequential training, and the roofline.

    python benchmarks/bench_compare.py [--repeat 2] [--e2e-repeat 1] [--out F] [--skip-e2e]

Every figure is a ratio of two timings taken in this one run, interleaved (vectorised,
sequential, vectorised, ...), each the best (minimum) of its samples: the machine may be shared,
and the load average is recorded before and after every sample. The default grid is
:data:`DEFAULTS`, the ``depth`` preset: a plain 20-layer ReLU network of width 128 on digits,
10 epochs of SGD.

1. **Training only**, in this process after a warm-up: ``train_runs`` vectorised (engine and
   group size as :func:`~initlab.lab.trainer.plan_vectorised` picks them, threads as the first
   steps' :class:`~initlab.lab.groups.ThreadTrial` picks them, all of it included) against
   ``vectorised=False``, on three grids:

   - ``default``: the default run (11 entries x 3 seeds, ``DEFAULTS``' model and epochs);
   - ``seeds_preset``: ``initlab compare --preset seeds`` (11 entries x 3 seeds, the shallow
     64-256-128-10 MLP, 10 epochs of Adam): the default grid when the speed issue was filed;
   - ``seed_entries``: the seeds' 6 entries x 3 seeds, 5 epochs;
   - ``cnn``: the zoo's CNN on 8x8 digit images, 6 entries x 3 seeds, 3 epochs.

   On the default grid the sequential path also runs on one thread, for reference: its kernels
   are too small to share, and two threads lose to one when other processes load the cores.

2. **Roofline** (default grid): the per-step time of the vectorised ensemble (forward, backward,
   optimizer step of the whole group, as the trainer runs it) beside the time of the kernels such
   a step cannot avoid, measured alone on plain tensors at the same thread count: per Linear
   layer the forward ``baddbmm``, the weight-gradient ``bmm`` and (all but the first layer) the
   input-gradient ``bmm``, plus the grid's fused optimizer update of all parameters (SGD with
   momentum). The ratio says how much the ensemble step spends beyond that (activations, loss,
   bias sums, autograd, Python, and memory traffic). Each kernel timed alone runs on operands
   its previous repetition left in cache; the **working-set roofline** runs the same kernels in
   a step's order over the group's own tensors (every layer's weights, fresh gradients kept
   until the update), so it also pays the memory traffic a real step cannot avoid. Both ratios
   are printed. All run on the thread count :func:`~initlab.lab.groups.fastest_threads` picks
   for the ensemble step.

3. **End to end**: ``python -m initlab compare --out TMP --json`` in a fresh process (imports,
   data, training, statistics, plots, report) against the same with ``--sequential``; and the
   time from a fresh process's start to its first progress callback (``compare(progress=f)``:
   imports, data, model checks, first training step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from initlab import build_model
from initlab.lab import load_dataset
from initlab.lab.entries import SEED_ENTRIES, resolve_entries
from initlab.lab.experiment import DEFAULTS, PRESETS
from initlab.lab.groups import fastest_threads, thread_candidates
from initlab.lab.results import versions
from initlab.lab.trainer import (
    Run,
    TrainConfig,
    build_run_model,
    make_optimizer,
    plan_vectorised,
    train_runs,
)

#: name -> (model spec, image inputs, entry names or None for the defaults, epochs)
GRIDS: dict[str, tuple[str, bool, list[str] | None, int]] = {
    "default": (DEFAULTS["model"], False, None, DEFAULTS["epochs"]),
    "seeds_preset": (PRESETS["seeds"]["model"], False, None, PRESETS["seeds"]["epochs"]),
    "seed_entries": (DEFAULTS["model"], False, list(SEED_ENTRIES), 5),
    "cnn": ("cnn", True, list(SEED_ENTRIES), 3),
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _best(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def grid_setup(name: str) -> tuple[Callable[[], nn.Module], list[Run], object, TrainConfig]:
    spec, image, entries, epochs = GRIDS[name]
    data = load_dataset(DEFAULTS["dataset"], image=image)

    def factory() -> nn.Module:
        return build_model(spec, data.input_shape, data.num_classes)

    runs = [Run(e, s) for e in resolve_entries(entries) for s in range(DEFAULTS["seeds"])]
    preset = PRESETS["seeds"] if name == "seeds_preset" else DEFAULTS
    config = TrainConfig(epochs=epochs, optimizer=preset["optimizer"], lr=preset["lr"],
                         batch_size=preset["batch_size"])  # fmt: skip
    return factory, runs, data, config


def training_only(name: str, repeat: int, one_thread: bool = False) -> dict:
    """Interleaved vectorised / sequential ``train_runs`` on grid ``name``, best of ``repeat``
    (``one_thread``: also the sequential path on one thread, for reference)."""
    factory, runs, data, config = grid_setup(name)
    probe = [build_run_model(factory, r.entry, r.seed) for r in runs[:2]]
    plan = plan_vectorised(probe, len(runs), data, config)
    warm = TrainConfig(epochs=1, batch_size=config.batch_size)
    train_runs(factory, runs[:4], data, warm)
    train_runs(factory, runs[:1], data, warm, vectorised=False)
    modes = ["vectorised", "sequential"] + (["sequential_1_thread"] if one_thread else [])
    samples: dict[str, list[dict]] = {m: [] for m in modes}
    threads = torch.get_num_threads()
    for _ in range(repeat):
        for mode in modes:
            torch.set_num_threads(1 if mode == "sequential_1_thread" else threads)
            before = _load()
            t0 = time.perf_counter()
            results = train_runs(factory, runs, data, config, vectorised=mode == "vectorised")
            seconds = time.perf_counter() - t0
            sizes = sorted({r.group_size for r in results})
            samples[mode].append(
                {"seconds": round(seconds, 3), "load_before": before, "load_after": _load(),
                 "group_sizes": sizes}
            )  # fmt: skip
    torch.set_num_threads(threads)
    best = {k: min(s["seconds"] for s in v) for k, v in samples.items()}
    out = {
        "model": GRIDS[name][0],
        "runs": len(runs),
        "epochs": config.epochs,
        "steps_per_run": config.epochs * -(-data.n_train // config.batch_size),
        "plan": {
            "engine": plan.engine,
            "group_size": plan.group_size,
            "threads": plan.threads or "first steps",
            "per_run_mib": round(plan.per_run_bytes / 2**20, 2),
        },
        "vectorised_seconds": round(best["vectorised"], 3),
        "sequential_seconds": round(best["sequential"], 3),
        "speedup": round(best["sequential"] / best["vectorised"], 2),
        "samples": samples,
    }
    if one_thread:  # the plain loop on one thread: often faster than on all (tiny kernels)
        out["sequential_1_thread_seconds"] = round(best["sequential_1_thread"], 3)
        out["speedup_vs_1_thread"] = round(best["sequential_1_thread"] / best["vectorised"], 2)
    return out


def roofline(steps: int = 20) -> dict:
    """Per-step time of the default grid's vectorised ensemble beside its kernels' time."""
    factory, runs, data, config = grid_setup("default")
    probe = [build_run_model(factory, r.entry, r.seed) for r in runs[:2]]
    plan = plan_vectorised(probe, len(runs), data, config)
    size, batch = plan.group_size, config.batch_size
    models = [build_run_model(factory, r.entry, r.seed) for r in runs[:size]]
    before = torch.get_num_threads()
    net = plan.make(models).train()
    opt = make_optimizer(list(net.params.values()), config)
    idx = torch.stack([torch.randperm(data.n_train)[:batch] for _ in range(size)])
    x, y = data.x_train[idx], data.y_train[idx]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        net.loss(x, y).sum().backward()
        opt.step()

    threads = plan.threads or fastest_threads(step, thread_candidates())
    torch.set_num_threads(threads)
    try:
        step()
        ensemble = _best(step, steps)
        kernels = _kernel_time(models[0], size, batch, config, steps)
        working = _working_set_time(models[0], size, batch, config, steps)
    finally:
        torch.set_num_threads(before)
    out = {"runs": size, "batch": batch, "threads": threads, "engine": plan.engine,
           "ensemble_step_ms": round(ensemble * 1e3, 3)}  # fmt: skip
    if kernels is not None:
        out |= {"roofline_step_ms": round(kernels * 1e3, 3),
                "ratio": round(ensemble / kernels, 2)}  # fmt: skip
    if working is not None:
        out |= {"working_set_step_ms": round(working * 1e3, 3),
                "working_set_ratio": round(ensemble / working, 2)}  # fmt: skip
    return out


def _working_set_time(
    model: nn.Module, size: int, batch: int, config: TrainConfig, n: int
) -> float | None:
    """The same GEMMs and optimizer update as :func:`_kernel_time`, run as one step runs them:
    every layer's own weights, the forward's outputs kept for the backward, each weight
    gradient a fresh tensor kept until the update (None for models not all Linear).

    The kernels of :func:`_kernel_time` are timed alone, each on operands left in cache by its
    previous repetition; here they stream the group's whole working set (weights, gradients,
    optimizer state, activations) through the caches as a real step does. The difference is
    the memory traffic a step cannot avoid; what the ensemble step spends beyond this is
    activations, loss, bias sums, autograd and Python.
    """
    layers = [m for m in model.modules() if list(m.parameters(recurse=False))]
    if not layers or any(type(m) is not nn.Linear for m in layers):
        return None
    ws = [torch.randn(size, m.in_features, m.out_features) * 0.05 for m in layers]
    bs = [torch.randn(size, m.out_features) for m in layers]
    x0 = torch.randn(size, batch, layers[0].in_features)
    for p in ws + bs:
        p.requires_grad_(True)
        p.grad = torch.zeros_like(p)
    opt = make_optimizer(ws + bs, config)

    def step() -> None:
        with torch.no_grad():
            acts = [x0]
            for w, b in zip(ws, bs, strict=True):
                acts.append(torch.baddbmm(b.unsqueeze(1), acts[-1], w))
            g = acts.pop()
            for i in reversed(range(len(ws))):
                ws[i].grad = torch.bmm(acts[i].transpose(1, 2), g)
                if i > 0:
                    g = torch.bmm(g, ws[i].transpose(1, 2))
        opt.step()

    step()
    return _best(step, n)


def _kernel_time(
    model: nn.Module, size: int, batch: int, config: TrainConfig, n: int
) -> float | None:
    """The GEMMs and the fused optimizer update of one step of ``size`` stacked copies of an
    all-Linear ``model`` (None for other models), each timed alone (best of ``n``)."""
    layers = [m for m in model.modules() if list(m.parameters(recurse=False))]
    if not layers or any(type(m) is not nn.Linear for m in layers):
        return None
    total = 0.0
    params = []
    for i, layer in enumerate(layers):
        out_f, in_f = layer.weight.shape
        x, w = torch.randn(size, batch, in_f), torch.randn(size, in_f, out_f)
        b, g = torch.randn(size, 1, out_f), torch.randn(size, batch, out_f)
        total += _best(lambda x=x, w=w, b=b: torch.baddbmm(b, x, w), n)
        total += _best(lambda x=x, g=g: torch.bmm(x.transpose(1, 2), g), n)
        if i > 0:
            total += _best(lambda w=w, g=g: torch.bmm(g, w.transpose(1, 2)), n)
        params += [w, b.squeeze(1)]
    for p in params:
        p.requires_grad_(True)
        p.grad = torch.randn_like(p)
    opt = make_optimizer(params, config)
    opt.step()
    total += _best(opt.step, n)
    return total


_FIRST_PROGRESS = """
import sys, tempfile, time
from initlab.lab import compare
def progress(advance, total):
    if not progress.seen:
        progress.seen = True
        print(f"first-progress {time.time()}", flush=True)
progress.seen = False
with tempfile.TemporaryDirectory() as tmp:
    compare(out=tmp, progress=progress)
"""


def first_progress() -> float:
    """Seconds from a fresh process's start to its first progress callback (default run)."""
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", _FIRST_PROGRESS], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    seconds = float("nan")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("first-progress"):
            seconds = float(line.split()[1]) - t0
            break
    proc.kill()
    proc.wait()
    return seconds


def end_to_end(repeat: int) -> dict:
    """Interleaved ``python -m initlab compare`` vectorised / ``--sequential``, best of each."""
    samples: dict[str, list[dict]] = {"vectorised": [], "sequential": []}
    summary = None
    for _ in range(repeat):
        for mode in ("vectorised", "sequential"):
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "initlab", "compare", "--out", str(Path(tmp) / "r"),
                       "--json"]  # fmt: skip
                if mode == "sequential":
                    cmd.append("--sequential")
                before = _load()
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                samples[mode].append({"seconds": round(time.perf_counter() - t0, 3),
                                      "load_before": before, "load_after": _load()})  # fmt: skip
                if mode == "vectorised":
                    summary = json.loads(proc.stdout)
    best = {k: min(s["seconds"] for s in v) for k, v in samples.items()}
    return {
        "vectorised_seconds": round(best["vectorised"], 2),
        "sequential_seconds": round(best["sequential"], 2),
        "speedup": round(best["sequential"] / best["vectorised"], 2),
        "samples": samples,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="training-only samples per path")
    parser.add_argument("--e2e-repeat", type=int, default=1, help="end-to-end samples per path")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--skip-e2e", action="store_true", help="no end-to-end measurement")
    parser.add_argument("--grids", default=",".join(GRIDS), help="training-only grids to run")
    args = parser.parse_args()

    load_start = os.getloadavg()
    result: dict = {"default_run": dict(DEFAULTS) | {"entries": len(resolve_entries(None))}}
    print(f"load average {load_start[0]:.2f}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    result["training_only"] = {}
    for name in args.grids.split(","):
        t = training_only(name, args.repeat, one_thread=name == "default")
        result["training_only"][name] = t
        p = t["plan"]
        print(f"training only, {name} ({t['model']}, {t['runs']} runs x {t['steps_per_run']} "
              f"steps): {t['vectorised_seconds']} s vectorised ({p['engine']}, group "
              f"{p['group_size']}, {p['threads']} threads), {t['sequential_seconds']} s "
              f"sequential: {t['speedup']}x")  # fmt: skip
        if "speedup_vs_1_thread" in t:
            print(f"  sequential on 1 thread: {t['sequential_1_thread_seconds']} s: "
                  f"{t['speedup_vs_1_thread']}x")  # fmt: skip
    r = result["roofline"] = roofline()
    print(f"vectorised step ({r['runs']} runs x batch {r['batch']}, {r['threads']} threads): "
          f"{r['ensemble_step_ms']} ms; roofline (GEMMs + optimizer update, each alone) "
          f"{r.get('roofline_step_ms', 'n/a')} ms; ratio {r.get('ratio', 'n/a')}; the same "
          f"kernels over the step's working set {r.get('working_set_step_ms', 'n/a')} ms; "
          f"ratio {r.get('working_set_ratio', 'n/a')}")  # fmt: skip
    if not args.skip_e2e:
        e = end_to_end(args.e2e_repeat)
        result["table"] = (e.pop("summary") or {}).get("stats")
        result["end_to_end"] = e
        print(f"default run end to end: {e['vectorised_seconds']} s vectorised, "
              f"{e['sequential_seconds']} s sequential: {e['speedup']}x")  # fmt: skip
        first = min(first_progress() for _ in range(2))
        result["first_progress_seconds"] = round(first, 2)
        print(f"time to first progress (fresh process, default run): {first:.2f} s")
    load_end = os.getloadavg()
    result["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_start,
        "load_average_end": load_end,
    }
    result["versions"] = versions()
    print(f"load average {load_start[0]:.2f} before, {load_end[0]:.2f} after")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
