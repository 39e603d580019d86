"""Benchmark ``initlab compare``: the default run end to end, and vectorised vs sequential.

    python benchmarks/bench_compare.py [--repeat 3] [--e2e-repeat 1] [--threads N] [--out F]

Two measurements of the default grid (11 entries x 3 seeds of :data:`DEFAULTS`, the ``depth``
preset: a plain 20-layer ReLU network of width 128 on digits, 10 epochs of SGD; results in
benchmarks/results/ from before that default was chosen measured the seeds' MLP with Adam):

1. **end to end**: ``python -m initlab compare --out TMP --no-progress`` in a fresh process
   (imports, data, training, statistics, plots, report), once vectorised and once with
   ``--sequential``; the best of ``--e2e-repeat`` runs each.
2. **training only**, in this process after a warm-up (so one-time costs such as imports,
   LAPACK and optimizer set-up are paid before): ``train_runs`` on all 33 runs, vectorised
   and sequential, best of ``--repeat`` each; then the same for a smaller MLP
   (:data:`SMALL_MODEL`), whose plain loop is dominated by per-step overhead, not arithmetic.

The machine may be shared: every sample is recorded with the load average, and the best
(minimum) time is the one reported, as usual for noisy machines. Other work on the machine
hurts OpenMP's multi-threaded ops (the vectorised path's large matmuls) far more than the
sequential path's small ones; ``--threads 1`` measures both paths on one core each, which is
steadier under load.
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
from pathlib import Path

import torch

from initlab import build_model
from initlab.lab import load_dataset
from initlab.lab.entries import resolve_entries
from initlab.lab.experiment import DEFAULTS
from initlab.lab.results import versions
from initlab.lab.trainer import Run, TrainConfig, train_runs

#: a smaller network on the same grid, where per-step overhead rather than arithmetic
#: dominates the plain loop (the regime vectorising is for; also a GPU's)
SMALL_MODEL = "mlp:widths=64"


def end_to_end(sequential: bool, repeat: int) -> dict:
    """Best wall time of ``python -m initlab compare`` (default run) in a fresh process."""
    samples, summary = [], None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            cmd = [sys.executable, "-m", "initlab", "compare", "--out", str(out), "--json"]
            if sequential:
                cmd.append("--sequential")
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            samples.append({"seconds": time.perf_counter() - t0, "load_before": load})
            summary = json.loads(proc.stdout)
    best = min(s["seconds"] for s in samples)
    return {"best_seconds": best, "samples": samples, "summary": summary}


def training_only(repeat: int, model: str = DEFAULTS["model"]) -> dict:
    """Best in-process training time of the default grid, vectorised and sequential."""
    data = load_dataset(DEFAULTS["dataset"])

    def factory() -> torch.nn.Module:
        return build_model(model, data.input_shape, data.num_classes)

    seeds = range(DEFAULTS["seeds"])
    runs = [Run(e, s) for e in resolve_entries(None) for s in seeds]
    config = TrainConfig(epochs=DEFAULTS["epochs"], optimizer=DEFAULTS["optimizer"],
                         lr=DEFAULTS["lr"], batch_size=DEFAULTS["batch_size"])  # fmt: skip
    warm = TrainConfig(epochs=1)
    train_runs(factory, runs[:4], data, warm)
    train_runs(factory, runs[:2], data, warm, vectorised=False)
    out: dict = {}
    for name, vectorised in (("vectorised", True), ("sequential", False)):
        samples = []
        for _ in range(repeat):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            train_runs(factory, runs, data, config, vectorised=vectorised)
            samples.append({"seconds": time.perf_counter() - t0, "load_before": load})
        out[name] = {"best_seconds": min(s["seconds"] for s in samples), "samples": samples}
    out["runs"] = len(runs)
    out["steps_per_run"] = config.epochs * -(-data.n_train // config.batch_size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="training-only samples per path")
    parser.add_argument("--e2e-repeat", type=int, default=1, help="end-to-end samples per path")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--threads", type=int, help="torch threads for every measurement (default: torch's own)"
    )
    parser.add_argument("--skip-e2e", action="store_true", help="training-only measurement")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the end-to-end subprocesses

    empty = {"best_seconds": float("nan"), "samples": [], "summary": None}
    e2e_vec = empty if args.skip_e2e else end_to_end(False, args.e2e_repeat)
    e2e_seq = empty if args.skip_e2e else end_to_end(True, args.e2e_repeat)
    train = training_only(args.repeat)
    small = training_only(args.repeat, SMALL_MODEL)
    result = {
        "default_run": {k: v for k, v in DEFAULTS.items()} | {"entries": 11},
        "end_to_end": {
            "vectorised_seconds": round(e2e_vec["best_seconds"], 2),
            "sequential_seconds": round(e2e_seq["best_seconds"], 2),
            "speedup": round(e2e_seq["best_seconds"] / e2e_vec["best_seconds"], 2),
            "samples": {"vectorised": e2e_vec["samples"], "sequential": e2e_seq["samples"]},
        },
        "training_only": {
            "vectorised_seconds": round(train["vectorised"]["best_seconds"], 2),
            "sequential_seconds": round(train["sequential"]["best_seconds"], 2),
            "speedup": round(
                train["sequential"]["best_seconds"] / train["vectorised"]["best_seconds"], 2
            ),
            "runs": train["runs"],
            "steps_per_run": train["steps_per_run"],
            "samples": {k: train[k]["samples"] for k in ("vectorised", "sequential")},
        },
        "training_only_small_model": {
            "model": SMALL_MODEL,
            "vectorised_seconds": round(small["vectorised"]["best_seconds"], 2),
            "sequential_seconds": round(small["sequential"]["best_seconds"], 2),
            "speedup": round(
                small["sequential"]["best_seconds"] / small["vectorised"]["best_seconds"], 2
            ),
        },
        "table": e2e_vec["summary"]["stats"] if e2e_vec["summary"] else None,
        "threads_option": args.threads,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
        },
        "versions": versions(),
    }
    e, t = result["end_to_end"], result["training_only"]
    print(f"default run end to end: {e['vectorised_seconds']} s vectorised, "
          f"{e['sequential_seconds']} s sequential ({e['speedup']}x)")  # fmt: skip
    print(f"training only ({t['runs']} runs x {t['steps_per_run']} steps): "
          f"{t['vectorised_seconds']} s vectorised, {t['sequential_seconds']} s sequential "
          f"({t['speedup']}x)")  # fmt: skip
    t = result["training_only_small_model"]
    print(f"training only, {SMALL_MODEL} (same grid): {t['vectorised_seconds']} s vectorised, "
          f"{t['sequential_seconds']} s sequential ({t['speedup']}x)")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
