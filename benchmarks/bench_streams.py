"""Benchmark KeyedStream fills against torch's own CPU uniform_/normal_ (float32).

    python benchmarks/bench_streams.py [--numel 16777216] [--repeat 5] [--out results.json]

Each case is warmed up once, then timed ``--repeat`` times; the best time is reported, with
the ratio stream/torch (below 1: the stream is faster) for uniform and normal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from initlab.streams import CH, KeyedStream, get_num_threads, set_num_threads


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: allocations, thread pool, lazy imports
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(numel: int, repeat: int, threads: list[int]) -> dict:
    t = torch.empty(numel, dtype=torch.float32)
    rows: dict[str, float] = {
        "torch uniform_": best_of(lambda: t.uniform_(), repeat),
        "torch normal_": best_of(lambda: t.normal_(), repeat),
    }
    old = get_num_threads()
    try:
        for n in threads:
            set_num_threads(n)
            s = KeyedStream(0, "bench.weight")
            cases = {
                "uniform_": lambda s=s: s.uniform_(t, 0.0, 1.0),
                "normal_": lambda s=s: s.normal_(t, 0.0, 1.0),
                "trunc_normal_": lambda s=s: s.trunc_normal_(t, -2.0, 2.0),
            }
            for name, fn in cases.items():
                rows[f"stream {name} ({n} thr)"] = best_of(fn, repeat)
    finally:
        set_num_threads(old)
    ratios = {
        f"{dist} ({n} thr) / torch": rows[f"stream {dist}_ ({n} thr)"] / rows[f"torch {dist}_"]
        for dist in ("uniform", "normal")
        for n in threads
    }
    return {
        "numel": numel,
        "repeat": repeat,
        "chunk": CH,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "ms": {k: v * 1e3 for k, v in rows.items()},
        "melem_per_s": {k: numel / v / 1e6 for k, v in rows.items()},
        "ratio_stream_over_torch": ratios,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--numel", type=int, default=16 * 2**20)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", type=str, default=None, help="write the results as JSON here")
    args = p.parse_args()
    res = run(args.numel, args.repeat, args.threads)
    print(f"numel={res['numel']:,}  best of {res['repeat']}  float32  CH={res['chunk']}")
    print(f"{'case':34s}{'ms':>10s}{'Melem/s':>10s}")
    for k, ms in res["ms"].items():
        print(f"{k:34s}{ms:10.1f}{res['melem_per_s'][k]:10.0f}")
    print("time ratios stream / torch (below 1: the stream is faster)")
    for k, r in res["ratio_stream_over_torch"].items():
        print(f"  {k:32s}{r:8.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
