"""Meta build + ``initlab.materialize`` against torch's default eager build, 449M-parameter GPT.

    python benchmarks/bench_materialize.py [--repeat 3] [--verify] [--out results.json]

The model is GPT-2 XL-wide with 12 blocks: d=1600, vocabulary 50257, context 1024; each block
LayerNorm, fused qkv Linear(d, 3d), proj Linear(d, d), LayerNorm, MLP Linear(d, 4d) +
Linear(4d, d); the token embedding is tied to the head. Every case runs in a fresh
interpreter (``python bench_materialize.py --case NAME``), so timings include the first-call
costs a user pays and peak RSS (VmHWM) is that case's own:

* ``eager``: ``GPT()`` on CPU (torch's default init, what ``initialize`` then overwrites);
* ``materialize``: ``with initlab.meta_build(): GPT()`` then
  ``materialize(model, "gpt2:n_layers=12")`` (report with achieved std, the default);
* ``materialize_nomeasure``: the same with ``measure=False``;
* ``materialize_torch_meta``: built under plain ``torch.device("meta")`` instead, which runs
  every ``reset_parameters`` on meta (torch's first ``normal_`` on meta imports dynamo);
* ``eager_initialize``: ``GPT()`` then ``initlab.initialize`` (the route materialize replaces);
* ``touch``: allocate every parameter and write zeros (torch ``fill_``, its threads): the
  memory a fresh process must fault in, a floor for any initialisation.

Each fresh process times its first build, then a second one in the same process ("warm").
``--verify`` also checks, in one more process, that materialize equals eager build +
``initialize`` bit for bit. A profile case times the parts of materialize separately. The
numbers are ratios measured in one run on a possibly shared machine, not timed tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from torch import nn

POLICY = "gpt2:n_layers=12"


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_c_proj = nn.Linear(4 * d, d)


class GPT(nn.Module):
    def __init__(self, d: int = 1600, n_layers: int = 12, vocab: int = 50257, ctx: int = 1024):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight


def vm_kib(field: str) -> int:
    """A VmHWM/VmRSS field of /proc/self/status, in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if field == "VmHWM" else 0


def param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def build(case: str) -> nn.Module:
    import initlab
    from initlab.execute import materialize

    if case == "eager":
        return GPT()
    if case == "eager_initialize":  # what users do today: default init, then overwrite it
        model = GPT()
        initlab.initialize(model, POLICY, seed=0)
        return model
    if case == "touch":
        with initlab.meta_build():
            shapes = GPT()
        model = nn.Module()  # same tensors, zeros: page faults and writes only
        for i, p in enumerate(shapes.parameters()):
            model.register_parameter(f"p{i}", nn.Parameter(torch.empty(p.shape).fill_(0)))
        return model
    ctx = torch.device("meta") if case == "materialize_torch_meta" else initlab.meta_build()
    with ctx:
        model = GPT()
    materialize(model, POLICY, seed=0, measure=case != "materialize_nomeasure")
    return model


def run_case(case: str) -> dict[str, Any]:
    import initlab  # noqa: F401  (imports are not part of the timing)

    base = vm_kib("VmRSS")
    t0 = time.perf_counter()
    model = build(case)
    first = time.perf_counter() - t0
    peak = vm_kib("VmHWM")
    nbytes = param_bytes(model)
    nparams = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    t0 = time.perf_counter()
    build(case)
    warm = time.perf_counter() - t0
    return {
        "case": case,
        "first_s": first,
        "warm_s": warm,
        "params": nparams,
        "param_bytes": nbytes,
        "rss_before_kib": base,
        "peak_rss_kib": peak,
        "peak_rss_over_param_bytes": peak * 1024 / nbytes,
        "peak_rss_growth_over_param_bytes": (peak - base) * 1024 / nbytes,
    }


def run_verify() -> dict[str, Any]:
    import initlab

    ref = GPT()
    initlab.initialize(ref, POLICY, seed=0, strict=True)
    model = build("materialize")
    pairs = zip(ref.state_dict().values(), model.state_dict().values(), strict=True)
    same = all(torch.equal(a, b) for a, b in pairs)
    return {
        "case": "verify",
        "bit_identical": same,
        "tied": model.lm_head.weight is model.wte.weight,
    }


def run_profile() -> dict[str, Any]:
    """Where materialize's time goes: planning, allocation + first touch, generation, std."""
    import initlab
    from initlab import plan
    from initlab.streams import KeyedStream, get_num_threads

    with initlab.meta_build():
        model = GPT()
    t0 = time.perf_counter()
    report = plan(model, POLICY, 0)
    t_plan = time.perf_counter() - t0
    numel = sum(p.numel() for p in model.parameters())
    out: dict[str, Any] = {
        "case": "profile",
        "plan_s": t_plan,
        "rows": len(report.rows),
        "stream_threads": get_num_threads(),
    }
    n = 100_000_000
    t = torch.empty(n)
    t0 = time.perf_counter()
    KeyedStream(0, "x").normal_(t, 0.0, 0.02)  # first touch of fresh pages included
    out["stream_normal_cold_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    t0 = time.perf_counter()
    KeyedStream(0, "x").normal_(t, 0.0, 0.02)
    out["stream_normal_warm_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    t0 = time.perf_counter()
    t.normal_(0.0, 0.02)
    out["torch_normal_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    t0 = time.perf_counter()
    t.uniform_(-0.02, 0.02)
    out["torch_uniform_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    t0 = time.perf_counter()
    float(t.std())
    out["std_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    del t
    t0 = time.perf_counter()
    u = torch.empty(n)
    u.fill_(0.0)
    out["alloc_first_touch_ns_per_elem"] = (time.perf_counter() - t0) / n * 1e9
    out["model_elems"] = numel
    per = out["stream_normal_warm_ns_per_elem"] + out["alloc_first_touch_ns_per_elem"]
    out["predicted_materialize_s"] = numel * (per + out["std_ns_per_elem"]) * 1e-9 + t_plan
    del u
    out["materialize_breakdown_s"] = _breakdown()
    return out


def _breakdown() -> dict[str, float]:
    """cProfile of one materialize: cumulative seconds of its parts."""
    import cProfile
    import pstats

    from initlab.execute import materialize, meta_build

    with meta_build():
        model = GPT()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    materialize(model, POLICY, seed=0)
    prof.disable()
    total = time.perf_counter() - t0
    parts = {"plan": "plan", "fill_row": "fill (stream generation + first touch)",
             "achieved_std": "achieved std", "__setattr__": "swap parameters in",
             "make_buffer": "buffers"}  # fmt: skip
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out = {"total": total}
    for (_, _, fname), (_, _, _, cum, _) in stats.items():
        if fname in parts:
            out[parts[fname]] = out.get(parts[fname], 0.0) + cum
    return out


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per case: min/median times, peak RSS; speed-ups against ``eager``, including the
    median of the per-round ratios (cases run interleaved, so a round shares conditions)."""
    summary: dict[str, Any] = {}
    for c, rs in runs.items():
        summary[c] = {
            "first_s_min": min(r["first_s"] for r in rs),
            "first_s_median": statistics.median(r["first_s"] for r in rs),
            "warm_s_min": min(r["warm_s"] for r in rs),
            "peak_rss_over_param_bytes": max(r["peak_rss_over_param_bytes"] for r in rs),
            "peak_rss_growth_over_param_bytes": max(
                r["peak_rss_growth_over_param_bytes"] for r in rs
            ),
        }
    for c in list(runs)[1:]:
        for k in ("first_s_min", "first_s_median", "warm_s_min"):
            summary[c][f"speedup_{k}"] = summary["eager"][k] / summary[c][k]
        for k in ("first_s", "warm_s"):
            pairs = zip(runs["eager"], runs[c], strict=True)
            ratios = [e[k] / r[k] for e, r in pairs]
            summary[c][f"speedup_{k}_per_round"] = ratios
            summary[c][f"speedup_{k}_per_round_median"] = statistics.median(ratios)
    return summary


def spawn(case: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--case", case]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per case")
    ap.add_argument("--verify", action="store_true", help="check bit equality (more memory)")
    ap.add_argument("--cases", help="comma-separated subset of the cases (eager always runs)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.case:
        fn = {"verify": run_verify, "profile": run_profile}.get(args.case)
        print(json.dumps(fn() if fn else run_case(args.case)))
        return
    load0 = os.getloadavg()
    cases = ["eager", "materialize", "materialize_nomeasure", "materialize_torch_meta",
             "eager_initialize", "touch"]  # fmt: skip
    if args.cases:
        cases = ["eager"] + [c for c in cases[1:] if c in args.cases.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    for _ in range(args.repeat):
        for c in cases:  # interleaved, so a burst of load elsewhere hits every case
            runs[c].append(spawn(c))
            r = runs[c][-1]
            print(
                f"{c:24s} first {r['first_s']:.2f} s  warm {r['warm_s']:.2f} s  peak RSS "
                f"{r['peak_rss_over_param_bytes']:.3f}x params",
                flush=True,
            )
    summary = summarize(runs)
    result: dict[str, Any] = {
        "benchmark": "meta build + materialize vs eager build, GPT d=1600 x12, vocab 50257",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load0, os.getloadavg()],
        "params": runs["eager"][0]["params"],
        "param_bytes": runs["eager"][0]["param_bytes"],
        "summary": summary,
        "runs": runs,
        "profile": spawn("profile"),
    }
    if args.verify:
        result["verify"] = spawn("verify")
    print(json.dumps(result["summary"], indent=2))
    print(json.dumps(result["profile"], indent=2))
    if "verify" in result:
        print(json.dumps(result["verify"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
