"""Time initlab's exact truncated normal against ``normal_`` and torch.nn.init.trunc_normal_.

    python benchmarks/bench_trunc_normal.py [--numel N] [--repeats R] [--out result.json]

Each method fills the same float32 tensor; the time is the best of ``--repeats`` runs after one
warm-up run. Reported: milliseconds, M values/s, and ours / normal_.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from initlab.sampling import standard_trunc_normal_, trunc_normal_method


def best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)
    t = torch.empty(args.numel, dtype=torch.float32, device=device)
    cases = {
        "normal_": lambda: t.normal_(generator=gen),
        "initlab standard_trunc_normal_ [-2, 2]": lambda: standard_trunc_normal_(
            t, -2.0, 2.0, generator=gen
        ),
        "torch.nn.init.trunc_normal_ [-2, 2]": lambda: torch.nn.init.trunc_normal_(
            t, 0.0, 1.0, -2.0, 2.0, generator=gen
        ),
    }
    seconds = {name: best_time(fn, args.repeats, device) for name, fn in cases.items()}
    base = seconds["normal_"]
    ours = seconds["initlab standard_trunc_normal_ [-2, 2]"]

    print(f"float32, numel={args.numel}, device={device}, threads={torch.get_num_threads()}")
    print(f"{'method':<42} {'ms':>9} {'M/s':>8} {'x normal_':>10}")
    for name, s in seconds.items():
        print(f"{name:<42} {1e3 * s:9.1f} {args.numel / s / 1e6:8.0f} {s / base:10.2f}")
    print(f"ratio ours / normal_: {ours / base:.2f} (method {trunc_normal_method(-2, 2)})")

    result = {
        "numel": args.numel,
        "dtype": "float32",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "repeats": args.repeats,
        "seconds": seconds,
        "ratio_ours_over_normal": ours / base,
        "ratio_torch_trunc_over_normal": seconds["torch.nn.init.trunc_normal_ [-2, 2]"] / base,
        "method": trunc_normal_method(-2, 2),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
