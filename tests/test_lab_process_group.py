"""``torchrun --nproc-per-node 2 -m initlab compare``: two processes share the runs (gloo, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from initlab.lab.process_group import shard


def _gloo_available() -> bool:
    return dist.is_available() and dist.is_gloo_available()


def test_shard_is_round_robin() -> None:
    items = list(range(7))
    assert shard(items, 0, 2) == [0, 2, 4, 6] and shard(items, 1, 2) == [1, 3, 5]
    assert sorted(shard(items, 0, 3) + shard(items, 1, 3) + shard(items, 2, 3)) == items


@pytest.mark.skipif(not _gloo_available(), reason="torch.distributed with gloo is unavailable")
def test_two_process_run_writes_every_run_once(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "initlab", "compare", "--model", "mlp:widths=8",
        "--data", "synthetic:n=160,dim=4,classes=2,seed=0", "--policy", "xavier,zeros",
        "--seeds", "2", "--epochs", "1", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    assert len({x["run_id"] for x in lines}) == 4
    assert {(x["entry"], x["seed"]) for x in lines} == {
        (e, s) for e in ("xavier", "zeros") for s in (0, 1)
    }
    # each rank trained its share (2 runs) as one vectorised group
    assert {x["group_size"] for x in lines} == {2} and {x["mode"] for x in lines} == {"vectorised"}
    assert (out / "report.html").is_file() and (out / "curves_loss.png").is_file()
    assert proc.stdout.count("output folder:") == 1  # only rank 0 reports
    assert proc.stdout.count("Verdict on final validation accuracy") == 1
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "curves_accuracy.png", "curves_loss.png", "final.png", "propagation.json",
        "propagation.png", "report.html", "report.md", "runs.jsonl", "summary.json",
    ]  # fmt: skip
