"""Float32 normal chunk kernels, op by op, in ns per element on one thread.

    python benchmarks/bench_normal_kernels.py [--repeat 200] [--out FILE]

One chunk of CH = 2**17 words (the stream's largest chunk, as in a large fill), torch and the
pool at one thread; each op is timed alone, best of ``--repeat``. Compared:

* ``box_muller_torch``: the Box–Muller kernel with torch's log/cos/sin (initlab before this
  benchmark's change);
* ``box_muller_numpy``: the same formula with numpy's SIMD float32 log/cos/sin, as
  :class:`initlab.streams.kernels.Normal` now computes it (its full-kernel time too);
* ``ziggurat_fast_path``: the fast path of a 256-layer ziggurat (Marsaglia & Tsang 2000,
  https://doi.org/10.18637/jss.v005.i08): low 9 bits of the word pick a layer and sign, one
  table lookup for the accept limit and one for the scaled width, then k·W, and the positions
  of the rejected (1.49%). Their retries (wedge tests with exp, the tail by inversion: ~40-60
  ns per rejected element with numpy) are left out: a lower bound of a numpy ziggurat.

numpy has no vectorised gather, so each table lookup costs ~0.5 ns per element: the ziggurat's
two lookups cost about what numpy's SIMD transcendentals cost Box–Muller. The load average is
recorded; the numbers are for comparison within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from initlab.streams import CH
from initlab.streams.bits import Keystream, read_words
from initlab.streams.kernels import Normal, Scratch
from initlab.streams.keys import derive_key, draw_key

N, H = CH, CH // 2
U32 = np.dtype(np.uint32)


def best_ns(fn: Callable[[], object], repeat: int) -> float:
    """Best time of ``fn`` over ``repeat`` calls, in ns per chunk element."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) / N * 1e9


def box_muller_ops(words: np.ndarray, use_torch: bool) -> dict[str, Callable[[], object]]:
    """Box–Muller's ops in order, each from its own input buffer into its own output buffer
    (so repeating one op alone sees the values it sees in the kernel)."""
    f32 = lambda: np.empty(N, np.float32)  # noqa: E731
    w, kf, u1, lg, r2, r, th, cs, x = np.empty(N, np.uint32), *(f32() for _ in range(8))
    np.right_shift(words, 8, out=w)
    np.copyto(kf, w.view(np.int32), casting="unsafe")
    unit, angle = np.float32(2.0**-24), np.float32(2 * math.pi * 2.0**-24)
    np.add(np.multiply(kf[:H], unit, out=u1[:H]), unit, out=u1[:H])
    np.log(u1[:H], out=lg[:H])
    np.multiply(lg[:H], np.float32(-2.0), out=r2[:H])
    np.sqrt(r2[:H], out=r[:H])
    np.multiply(kf[H:], angle, out=th[:H])
    t = {
        name: torch.from_numpy(a)
        for name, a in (("u1", u1), ("lg", lg), ("th", th), ("cs", cs), ("r2", r2), ("x", x))
    }
    trig: dict[str, Callable[[], object]] = (
        {"cos (half)": lambda: torch.cos(t["th"][:H], out=t["cs"][:H]),
         "sin (half)": lambda: torch.sin(t["th"][:H], out=t["cs"][H:])}
        if use_torch else
        {"cos (half)": lambda: np.cos(th[:H], out=cs[:H]),
         "sin (half)": lambda: np.sin(th[:H], out=cs[H:])}
    )  # fmt: skip
    log = (lambda: torch.log(t["u1"][:H], out=t["lg"][:H])) if use_torch else (
        lambda: np.log(u1[:H], out=lg[:H]))  # fmt: skip
    return {
        "shift k = w >> 8": lambda: np.right_shift(words, 8, out=w),
        "int -> float": lambda: np.copyto(kf, w.view(np.int32), casting="unsafe"),
        "u1 = (k + 1)·2^-24 (half)": lambda: np.add(
            np.multiply(kf[:H], unit, out=u1[:H]), unit, out=u1[:H]),
        "log (half)": log,
        "r² = -2·ln u1 (half)": lambda: np.multiply(lg[:H], np.float32(-2.0), out=r2[:H]),
        "sqrt (half)": lambda: np.sqrt(r2[:H], out=r[:H]),
        "θ = k·2π·2^-24 (half)": lambda: np.multiply(kf[H:], angle, out=th[:H]),
        **trig,
        "r cos θ | r sin θ": lambda: np.multiply(
            cs.reshape(2, H), r[:H], out=x.reshape(2, H)),
        "sums (Σr², Σx)": lambda: (float(torch.sum(t["r2"][:H])), float(torch.sum(t["x"]))),
    }  # fmt: skip


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """The 256-layer ziggurat's fast-path tables by the word's low 9 bits (layer, sign):
    the accept limit ``⌊2²³·x_(i−1)/x_i⌋ << 9`` and the signed width ``±x_i·2⁻²³``."""
    r, v, layers = 3.6541528853610092, 4.928673233974648e-3, 256  # R solved so layer 1 closes
    x = np.empty(layers)
    x[-1] = r
    for i in range(layers - 2, 0, -1):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i + 1] + math.exp(-0.5 * x[i + 1] ** 2)))
    x[0] = v / math.exp(-0.5 * r * r)
    ratio = np.concatenate([[r / x[0], 0.0], x[1:-1] / x[2:]])
    limit = np.floor(ratio * 2.0**23).astype(np.uint32) << 9
    width = np.concatenate([x, -x]) * 2.0**-23
    return np.tile(limit, 2), width.astype(np.float32)


def ziggurat_ops(words: np.ndarray) -> dict[str, Callable[[], object]]:
    """The fast path of a 256-layer ziggurat (tables of 512 entries: layer and sign)."""
    limit, width = ziggurat_tables()
    w, b = np.empty(N, np.uint32), np.empty(N, np.intp)
    lim, rej = np.empty(N, np.uint32), np.empty(N, np.bool_)
    wt, kf, x, sq = (np.empty(N, np.float32) for _ in range(4))
    np.bitwise_and(words, 511, out=b, casting="unsafe")
    np.take(limit, b, out=lim, mode="wrap")
    np.greater_equal(words, lim, out=rej)
    tx, tsq = torch.from_numpy(x), torch.from_numpy(sq)
    return {
        "b = w & 511 (to intp)": lambda: np.bitwise_and(words, 511, out=b, casting="unsafe"),
        "lookup limit[b]": lambda: np.take(limit, b, out=lim, mode="wrap"),
        "reject = w >= limit": lambda: np.greater_equal(words, lim, out=rej),
        "lookup W[b]": lambda: np.take(width, b, out=wt, mode="wrap"),
        "shift k = w >> 9": lambda: np.right_shift(words, 9, out=w),
        "int -> float": lambda: np.copyto(kf, w.view(np.int32), casting="unsafe"),
        "x = k·W": lambda: np.multiply(kf, wt, out=x),
        "rejected positions": lambda: np.flatnonzero(rej),
        "sums (Σx, Σx²)": lambda: (torch.mul(tx, tx, out=tsq), float(torch.sum(tx)),
                                   float(torch.sum(tsq))),
    }  # fmt: skip


def run(repeat: int) -> dict:
    torch.set_num_threads(1)
    key = draw_key(derive_key(0, "bench.weight"), 0)
    raw = bytearray(N * 4 + 16)
    ks = Keystream(key)
    words = read_words(ks, 0, raw, N, U32).copy()
    out: dict = {"aes_ctr_words": best_ns(lambda: read_words(ks, 0, raw, N, U32), repeat)}
    for name, ops in (
        ("box_muller_torch", box_muller_ops(words, use_torch=True)),
        ("box_muller_numpy", box_muller_ops(words, use_torch=False)),
        ("ziggurat_fast_path", ziggurat_ops(words)),
    ):
        table = {op: best_ns(fn, repeat) for op, fn in ops.items()}
        out[name] = {"ops_ns_per_elem": table, "total_ns_per_elem": sum(table.values())}
    kern, w, dst, tmp = (
        Normal(0.0, 1.0, f64=False),
        words.copy(),
        np.empty(N, np.float32),
        Scratch(),
    )
    for label, sums in (
        ("kernel_normal_ns_per_elem", None),
        ("kernel_normal_sums_ns_per_elem", []),
    ):
        out[label] = best_ns(lambda s=sums: (np.copyto(w, words), kern(w, dst, tmp, s)), repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    load = [os.getloadavg()]
    res = run(args.repeat)
    load.append(os.getloadavg())
    res = {"chunk": N, "threads": 1, "torch": torch.__version__, "numpy": np.__version__,
           "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "loadavg_before_after": load, **res}  # fmt: skip
    for name in ("box_muller_torch", "box_muller_numpy", "ziggurat_fast_path"):
        print(f"{name}  (ns/elem, one thread)")
        for op, ns in res[name]["ops_ns_per_elem"].items():
            print(f"  {op:32s} {ns:6.3f}")
        print(f"  {'total':32s} {res[name]['total_ns_per_elem']:6.3f}")
    print(
        f"AES-128-CTR words: {res['aes_ctr_words']:.3f}; Normal kernel: "
        f"{res['kernel_normal_ns_per_elem']:.3f}, with sums "
        f"{res['kernel_normal_sums_ns_per_elem']:.3f}; load {load}"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
