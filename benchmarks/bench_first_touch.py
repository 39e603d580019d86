"""What a fresh process pays to fault in a model's parameter memory: the floor under
``materialize`` (and under any eager build) that no generator can remove.

    python benchmarks/bench_first_touch.py [--mib 740] [--repeat 5] [--out results.json]

Every case runs in a fresh interpreter, rounds interleaved: allocate the parameter shapes of
the Llama 194M benchmark model (``bench_materialize.py --model hf-llama``; ``--mib`` scales
the embeddings) with ``torch.empty``, then write every element once, and report wall time,
the process's system and user CPU seconds and its minor page faults:

* ``one_thread``: one thread writes every tensor (torch ``fill_`` on one intra-op thread);
* ``two_threads``: two threads split the tensors (what two fill threads do);
* ``hugepages``: one thread, after ``madvise(MADV_HUGEPAGE)`` on each tensor's 2 MiB-aligned
  interior (the transparent huge pages a library could ask for; Linux only);
* ``populate``: one thread, after ``madvise(MADV_POPULATE_WRITE)`` over each tensor (the
  kernel faults the pages in one call instead of one trap per page; Linux >= 5.14).

The figures are ratios on a possibly shared virtual machine (the load average is recorded);
a case whose madvise is refused reports the error instead of a time.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import torch

CASES = ["one_thread", "two_threads", "hugepages", "populate"]
MADV_HUGEPAGE, MADV_POPULATE_WRITE = 14, 23
_PAGE, _HUGE = 4096, 2 << 20


def shapes(mib: float) -> list[tuple[int, ...]]:
    """The Llama benchmark model's large parameters (hidden 1024, MLP 2816, 10 layers), the
    two embeddings sized so the total is about ``mib`` MiB of float32."""
    layers = [(1024, 1024)] * 40 + [(2816, 1024)] * 30
    rest = sum(a * b for a, b in layers) * 4
    vocab = max(1, int((mib * 2**20 - rest) / (2 * 1024 * 4)))
    return [(vocab, 1024)] * 2 + layers


_libc = ctypes.CDLL(None, use_errno=True)  # loaded once, outside the timed writes
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _madvise(t: torch.Tensor, advice: int) -> None:
    p, n = t.data_ptr(), t.numel() * t.element_size()
    if advice == MADV_HUGEPAGE:  # the whole 2 MiB pages inside the tensor
        a, e = -(-p // _HUGE) * _HUGE, (p + n) // _HUGE * _HUGE
    else:  # every 4 KiB page the tensor touches
        a, e = p // _PAGE * _PAGE, -(-(p + n) // _PAGE) * _PAGE
    if e > a and _libc.madvise(a, e - a, advice) != 0:
        raise OSError(ctypes.get_errno(), f"madvise({advice}) refused")


def run_case(case: str, mib: float) -> dict[str, Any]:
    torch.set_num_threads(1)
    tensors = [torch.empty(s) for s in shapes(mib)]
    nbytes = sum(t.numel() * 4 for t in tensors)

    def write(part: list[torch.Tensor]) -> None:
        for t in part:
            if case == "hugepages":
                _madvise(t, MADV_HUGEPAGE)
            elif case == "populate":
                _madvise(t, MADV_POPULATE_WRITE)
            t.fill_(1.0)

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    try:
        if case == "two_threads":
            threads = [threading.Thread(target=write, args=(tensors[i::2],)) for i in range(2)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        else:
            write(tensors)
    except OSError as e:
        return {"case": case, "error": str(e)}
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "case": case,
        "wall_s": wall,
        "sys_s": r1.ru_stime - r0.ru_stime,
        "user_s": r1.ru_utime - r0.ru_utime,
        "minor_faults": r1.ru_minflt - r0.ru_minflt,
        "bytes": nbytes,
        "ns_per_float": wall / (nbytes / 4) * 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--mib", type=float, default=740.0, help="MiB of float32 parameters")
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per case")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.mib)))
        return
    load0 = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CASES}
    for _ in range(args.repeat):
        for c in CASES:  # interleaved, so a burst of load elsewhere hits every case
            cmd = [sys.executable, os.path.abspath(__file__), "--case", c, "--mib", str(args.mib)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[c].append(json.loads(out.strip().splitlines()[-1]))
            r = runs[c][-1]
            print(c, {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
    summary = {}
    for c, rs in runs.items():
        ok = [r for r in rs if "wall_s" in r]
        if not ok:
            summary[c] = {"error": rs[0].get("error")}
            continue
        summary[c] = {
            f"{k}_{f.__name__}": f(r[k] for r in ok)
            for k in ("wall_s", "sys_s", "user_s")
            for f in (min, statistics.median, max)
        }
        summary[c]["minor_faults_median"] = statistics.median(r["minor_faults"] for r in ok)
    result = {
        "benchmark": "first touch of fresh parameter memory (Llama 194M shapes), fresh processes",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load0, os.getloadavg()],
        "summary": summary,
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
