"""Meta build + ``initlab.materialize`` against the eager build: our GPT, HF GPT-2 and Llama.

    python benchmarks/bench_materialize.py [--model gpt] [--repeat 3] [--verify] [--out FILE]
    python benchmarks/bench_materialize.py --model hf-gpt2,hf-llama --verify \
        --out benchmarks/results/materialize_hf.json          # Hugging Face: `make bench`

Models (``--model``, comma-separated; each runs its cases interleaved, then the next):

* ``gpt`` (the default): a 449M-parameter GPT of our own, GPT-2 XL-wide with 12 blocks: d=1600,
  vocabulary 50257, context 1024; each block LayerNorm, fused qkv Linear(d, 3d), proj
  Linear(d, d), LayerNorm, MLP Linear(d, 4d) + Linear(4d, d); the token embedding is tied to
  the head. Eager is ``GPT()`` (torch's default init); the policy ``gpt2:n_layers=12``.
* ``hf-gpt2``: transformers' GPT-2 124M, ``GPT2Config()`` (n_layer 12, n_embd 768, vocabulary
  50257, n_positions 1024; lm_head tied to wte). Eager is
  ``AutoModelForCausalLM.from_config(cfg)`` (torch's default init, then HF's
  ``_init_weights``); the policy is the ``gpt2`` family preset, which reads the config.
* ``hf-llama``: a Llama of 194M parameters, ``LlamaConfig(hidden_size=1024,
  num_hidden_layers=10, intermediate_size=2816, num_attention_heads=16,
  num_key_value_heads=16, vocab_size=32000)`` (untied lm_head; rotary ``inv_freq`` buffers).
  Eager is ``from_config``; the policy is the ``llama`` family preset.

Imports (torch, transformers and the model's modeling module) happen before the clock starts.
Every case runs in a fresh interpreter (``python bench_materialize.py --model M --case NAME``),
so timings include the first-call costs a user pays and peak RSS (VmHWM) is that case's own:

* ``eager``: the eager build above (``GPT()`` / ``from_config``): the baseline;
* ``materialize``: ``with initlab.meta_build():`` the same build, then
  ``materialize(model, POLICY)`` (report with achieved std, the default);
* ``materialize_nomeasure``: the same with ``measure=False``;
* ``materialize_torch_meta`` (``gpt`` only): built under plain ``torch.device("meta")``
  instead, which runs every ``reset_parameters`` on meta (torch's first ``normal_`` on meta
  imports dynamo);
* ``eager_initialize``: the eager build then ``initlab.initialize`` (the route materialize
  replaces);
* ``touch``: allocate every parameter and write zeros (torch ``fill_``, its threads): the
  memory a fresh process must fault in, a floor for any initialisation.

Each fresh process times its first build, then a second one in the same process ("warm"), in
wall-clock seconds and in CPU seconds of all its threads (the work done, which a shared
machine's load disturbs less; the keyed streams fill on several threads, so their CPU seconds
exceed their wall seconds, while torch's default init runs on one).
``--verify`` also checks, in one more process, that materialize equals eager build +
``initialize`` bit for bit, parameters and buffers (``inv_freq`` too), and that the tie is
kept. A profile case times the parts of materialize separately, with cProfile's top entries.
The numbers are ratios measured in one run on a possibly shared machine (the load average is
recorded before and after each model), not timed tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
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
#: --model name -> the policy materialize and initialize apply
POLICIES = {"gpt": POLICY, "hf-gpt2": "gpt2", "hf-llama": "llama"}
#: a model's cases, the eager baseline first
CASES = {
    "gpt": ["eager", "materialize", "materialize_nomeasure", "materialize_torch_meta",
            "eager_initialize", "touch"],
    "hf-gpt2": ["eager", "materialize", "materialize_nomeasure", "eager_initialize", "touch"],
    "hf-llama": ["eager", "materialize", "materialize_nomeasure", "eager_initialize", "touch"],
}  # fmt: skip
DESCRIPTIONS = {
    "gpt": "meta build + materialize vs eager build, GPT d=1600 x12, vocab 50257",
    "hf-gpt2": "meta build + materialize vs AutoModelForCausalLM.from_config, GPT2Config() (124M)",
    "hf-llama": "meta build + materialize vs AutoModelForCausalLM.from_config, LlamaConfig("
    "hidden_size=1024, num_hidden_layers=10, intermediate_size=2816, num_attention_heads=16, "
    "num_key_value_heads=16, vocab_size=32000)",
}


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


def hf_config(model: str) -> Any:
    """The transformers config of an ``hf-*`` model (the module doc gives the fields)."""
    from transformers import GPT2Config, LlamaConfig

    if model == "hf-gpt2":
        return GPT2Config()
    return LlamaConfig(
        hidden_size=1024,
        num_hidden_layers=10,
        intermediate_size=2816,
        num_attention_heads=16,
        num_key_value_heads=16,
        vocab_size=32000,
    )


def prepare(model: str) -> None:
    """Import everything the build needs, so that the clock measures the build alone."""
    import initlab  # noqa: F401

    if model.startswith("hf-"):
        from transformers import AutoModelForCausalLM, GPT2LMHeadModel, LlamaForCausalLM

        # the modeling modules load lazily on first use; load them now
        assert GPT2LMHeadModel and LlamaForCausalLM and AutoModelForCausalLM


def new_model(model: str) -> nn.Module:
    """The eager build of ``model`` (or, inside ``meta_build()``, its meta build)."""
    if model == "gpt":
        return GPT()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(hf_config(model))


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


def build(case: str, name: str = "gpt") -> nn.Module:
    import initlab
    from initlab.execute import materialize

    policy = POLICIES[name]
    if case == "eager":
        return new_model(name)
    if case == "eager_initialize":  # what users do today: default init, then overwrite it
        model = new_model(name)
        initlab.initialize(model, policy, seed=0)
        return model
    if case == "touch":
        with initlab.meta_build():
            shapes = new_model(name)
        model = nn.Module()  # same tensors, zeros: page faults and writes only
        for i, p in enumerate(shapes.parameters()):
            model.register_parameter(f"p{i}", nn.Parameter(torch.empty(p.shape).fill_(0)))
        return model
    ctx = torch.device("meta") if case == "materialize_torch_meta" else initlab.meta_build()
    with ctx:
        model = new_model(name)
    materialize(model, policy, seed=0, measure=case != "materialize_nomeasure")
    return model


def run_case(case: str, name: str = "gpt") -> dict[str, Any]:
    prepare(name)  # imports are not part of the timing
    base = vm_kib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    model = build(case, name)
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = vm_kib("VmHWM")
    nbytes = param_bytes(model)
    nparams = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    build(case, name)
    warm, warm_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "case": case,
        "first_s": first,
        "warm_s": warm,
        # CPU seconds of all the process's threads: the work done, whatever the load elsewhere
        "first_cpu_s": first_cpu,
        "warm_cpu_s": warm_cpu,
        "params": nparams,
        "param_bytes": nbytes,
        "rss_before_kib": base,
        "peak_rss_kib": peak,
        "peak_rss_over_param_bytes": peak * 1024 / nbytes,
        "peak_rss_growth_over_param_bytes": (peak - base) * 1024 / nbytes,
    }


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (non-persistent ones too, e.g. rotary ``inv_freq``)."""
    out = dict(model.named_parameters())
    out.update((f"buffer:{k}", b) for k, b in model.named_buffers())
    return out


def _tie(model: nn.Module) -> bool:
    if isinstance(model, GPT):
        return model.lm_head.weight is model.wte.weight
    return model.get_output_embeddings().weight is model.get_input_embeddings().weight


def run_verify(name: str = "gpt") -> dict[str, Any]:
    import initlab

    prepare(name)
    ref = new_model(name)
    initlab.initialize(ref, POLICIES[name], seed=0, strict=True)
    model = build("materialize", name)
    a, b = _tensors(ref), _tensors(model)
    differ = [k for k in a if k not in b or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    tied = _tie(model)
    want_tie = True if name == "gpt" else bool(model.config.tie_word_embeddings)
    return {
        "case": "verify",
        "bit_identical": not differ and a.keys() == b.keys(),
        "tensors_compared": len(a),
        "buffers_compared": sum(k.startswith("buffer:") for k in a),
        "differ": differ[:10],
        "tied": tied,
        "tie_as_eager": tied == _tie(ref) == want_tie,
    }


def run_profile(name: str = "gpt") -> dict[str, Any]:
    """Where materialize's time goes: planning, allocation + first touch, generation, std."""
    import initlab
    from initlab import plan
    from initlab.streams import KeyedStream, get_num_threads

    prepare(name)
    t0 = time.perf_counter()
    with initlab.meta_build():
        model = new_model(name)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = plan(model, POLICIES[name], 0)
    t_plan = time.perf_counter() - t0
    numel = sum(p.numel() for p in model.parameters())
    out: dict[str, Any] = {
        "case": "profile",
        "meta_build_s": t_build,
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
    out["materialize_breakdown_s"], out["top_cumulative"] = _breakdown(name)
    return out


def _breakdown(name: str) -> tuple[dict[str, float], list[str]]:
    """cProfile of one meta build + materialize: cumulative seconds of its parts, and the top
    entries by cumulative time (``seconds  function``)."""
    import cProfile
    import pstats

    from initlab.execute import materialize, meta_build

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    with meta_build():
        model = new_model(name)
    materialize(model, POLICIES[name], seed=0)
    prof.disable()
    total = time.perf_counter() - t0
    parts = {"new_model": "meta build", "plan": "plan",
             "fill_row": "fill (stream generation + first touch)",
             "achieved_std": "achieved std", "__setattr__": "swap parameters in",
             "make_buffer": "buffers"}  # fmt: skip
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out = {"total": total}
    for (_, _, fname), (_, _, _, cum, _) in stats.items():
        if fname in parts:
            out[parts[fname]] = out.get(parts[fname], 0.0) + cum
    top = sorted(stats.items(), key=lambda kv: -kv[1][3])[:25]
    where = [
        f"{cum:8.3f} s {calls:>7} calls  {os.path.basename(f)}:{line}({fn})"
        for (f, line, fn), (_, calls, _, cum, _) in top
    ]
    return out, where


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per case: min/median times, peak RSS; speed-ups against ``eager``, including the
    median of the per-round ratios (cases run interleaved, so a round shares conditions)."""
    summary: dict[str, Any] = {}
    for c, rs in runs.items():
        summary[c] = {
            "first_s_min": min(r["first_s"] for r in rs),
            "first_s_median": statistics.median(r["first_s"] for r in rs),
            "warm_s_min": min(r["warm_s"] for r in rs),
            "first_cpu_s_min": min(r.get("first_cpu_s", math.nan) for r in rs),
            "warm_cpu_s_min": min(r.get("warm_cpu_s", math.nan) for r in rs),
            "peak_rss_over_param_bytes": max(r["peak_rss_over_param_bytes"] for r in rs),
            "peak_rss_growth_over_param_bytes": max(
                r["peak_rss_growth_over_param_bytes"] for r in rs
            ),
        }
    for c in list(runs)[1:]:
        for k in ("first_s_min", "first_s_median", "warm_s_min", "first_cpu_s_min",
                  "warm_cpu_s_min"):  # fmt: skip
            summary[c][f"speedup_{k}"] = summary["eager"][k] / summary[c][k]
        for k in ("first_s", "warm_s"):
            pairs = zip(runs["eager"], runs[c], strict=True)
            ratios = [e[k] / r[k] for e, r in pairs]
            summary[c][f"speedup_{k}_per_round"] = ratios
            summary[c][f"speedup_{k}_per_round_median"] = statistics.median(ratios)
    return summary


def spawn(case: str, name: str = "gpt") -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--case", case, "--model", name]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_model(name: str, repeat: int, only: str | None, verify: bool) -> dict[str, Any]:
    """Every case of one model, ``repeat`` rounds interleaved, then its profile (and verify)."""
    load0 = os.getloadavg()
    cases = CASES[name]
    if only:
        cases = ["eager"] + [c for c in cases[1:] if c in only.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    for _ in range(repeat):
        for c in cases:  # interleaved, so a burst of load elsewhere hits every case
            runs[c].append(spawn(c, name))
            r = runs[c][-1]
            print(
                f"{name:9s} {c:24s} first {r['first_s']:.2f} s  warm {r['warm_s']:.2f} s "
                f"(CPU {r['warm_cpu_s']:.2f} s)  "
                f"peak RSS {r['peak_rss_over_param_bytes']:.3f}x params  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    load1 = os.getloadavg()
    result: dict[str, Any] = {
        "benchmark": DESCRIPTIONS[name],
        "policy": POLICIES[name],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load0, load1],
        "params": runs["eager"][0]["params"],
        "param_bytes": runs["eager"][0]["param_bytes"],
        "summary": summarize(runs),
        "runs": runs,
        "profile": spawn("profile", name),
    }
    if name.startswith("hf-"):
        import transformers

        result["transformers"] = transformers.__version__
    if verify:
        result["verify"] = spawn("verify", name)
    print(json.dumps(result["summary"], indent=2))
    print(json.dumps(result["profile"], indent=2))
    if "verify" in result:
        print(json.dumps(result["verify"]))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="gpt", help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per case")
    ap.add_argument("--verify", action="store_true", help="check bit equality (more memory)")
    ap.add_argument("--cases", help="comma-separated subset of the cases (eager always runs)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    names = args.model.split(",")
    for n in names:
        if n not in CASES:
            ap.error(f"unknown model {n!r}; choose from {', '.join(CASES)}")
    if args.case:
        fn = {"verify": run_verify, "profile": run_profile}.get(args.case)
        print(json.dumps(fn(names[0]) if fn else run_case(args.case, names[0])))
        return
    results = {n: bench_model(n, args.repeat, args.cases, args.verify) for n in names}
    # one model: its result as before; several: keyed by model, with the ratios side by side
    out: dict[str, Any] = results[names[0]] if len(names) == 1 else {
        "ratios_eager_over_materialize": {
            n: {k: r["summary"]["materialize"][f"speedup_{k}"]
                for k in ("first_s_min", "first_s_median", "warm_s_min", "warm_cpu_s_min")}
            for n, r in results.items()
        },
        **results,
    }  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
