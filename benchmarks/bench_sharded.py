"""Sharded init (FSDP2 recipe, gloo on CPU) with 1 and 2 processes: per-rank time, equality.

    python benchmarks/bench_sharded.py [--worlds 1 2] [--d 1024 --layers 8 --vocab 32000]
                                       [--out results.json]

Each rank builds the GPT-like model of ``bench_materialize`` on the meta device, applies
``fully_shard`` to every block and to the root (parameters become DTensors with Shard(0)),
then times ``initlab.initialize_sharded`` (allocate the local shards, fill them
from global indices, no communication). Every rank uses ``cpu_count // world`` stream
threads. Afterwards the shards are gathered (``full_tensor()``) and rank 0 compares them bit
for bit with a single-process eager build + ``initialize``. The numbers are measured in one
run on a possibly shared machine, not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_materialize import GPT

POLICY_FMT = "gpt2:n_layers={}"


def worker(rank: int, world: int, store: str, cfg: dict[str, int], out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    import initlab
    from initlab import initialize_sharded
    from initlab.streams import set_num_threads

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    set_num_threads(max(1, (os.cpu_count() or 1) // world))
    policy = POLICY_FMT.format(cfg["n_layers"])
    mesh = init_device_mesh("cpu", (world,))
    with torch.device("meta"):
        model = GPT(**cfg)
    for block in model.h:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    dist.barrier()
    t0 = time.perf_counter()
    initialize_sharded(model, policy, seed=0)
    own = time.perf_counter() - t0
    dist.barrier()
    wall = time.perf_counter() - t0
    local = sum(p.to_local().numel() for p in model.parameters())
    ref = None
    if rank == 0:
        ref = GPT(**cfg)
        initlab.initialize(ref, policy, seed=0, strict=True)
        ref_params = dict(ref.named_parameters())
    equal = True
    for name, p in model.named_parameters():
        full = p.full_tensor()
        if rank == 0:
            equal &= bool(torch.equal(full, ref_params[name]))
    stats: list[Any] = [None] * world
    dist.all_gather_object(stats, {"rank": rank, "init_s": own, "local_elems": local})
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"world": world, "ranks": stats, "wall_s": wall, "bit_identical": equal}, f)
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    cfg = {"d": args.d, "n_layers": args.layers, "vocab": args.vocab}
    with torch.device("meta"):
        numel = sum(p.numel() for p in GPT(**cfg).parameters())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for world in args.worlds:
            out = os.path.join(tmp, f"w{world}.json")
            store = os.path.join(tmp, f"store{world}")
            mp.start_processes(worker, args=(world, store, cfg, out), nprocs=world,
                               start_method="spawn")  # fmt: skip
            with open(out) as f:
                r = json.load(f)
            r["max_rank_s"] = max(s["init_s"] for s in r["ranks"])
            results.append(r)
            times = ", ".join(f"rank {s['rank']} {s['init_s']:.2f} s" for s in r["ranks"])
            print(f"world {world}: {times}; bit-identical: {r['bit_identical']}", flush=True)
    base = results[0]["max_rank_s"]
    for r in results:
        r["speedup_vs_first"] = base / r["max_rank_s"]
    result = {
        "benchmark": "FSDP2 fully_shard + initialize_sharded (gloo, CPU)",
        "model": cfg, "params": numel, "torch": torch.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg(), "results": results,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
