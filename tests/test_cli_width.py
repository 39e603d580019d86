"""``initlab coordcheck`` and ``initlab lrsweep``: tiny runs, JSON shapes, resume, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from initlab.cli import main


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_coordcheck_mlp_json_plot_and_table(tmp_path):
    out = tmp_path / "cc"
    res = run("coordcheck", "mlp", "--widths", "16,32,64", "--steps", "2", "--seeds", "1",
              "--batch-size", "16", "-o", str(out), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert data["widths"] == [16, 32, 64] and data["steps"] == 2
    assert set(data["coords"]) == {"sp", "mup"}
    assert set(data["slopes"]["sp"]) == {"fc1", "fc2", "head"}
    assert all(len(v) == 3 for v in data["slopes"]["sp"].values())  # steps 0, 1, 2
    assert all(len(rows) == 3 and len(rows[0]) == 3 for rows in data["coords"]["sp"].values())
    assert (out / "coordcheck.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "coordcheck.json").read_text()) == data
    res = run("coordcheck", "-m", "mlp", "--widths", "16,32", "--steps", "1", "--seeds", "1",
              "--param", "sp", "-o", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "SP: slope of log mean|x| vs log width" in res.output and "layers flagged" in res.output


def test_coordcheck_gpt2_family_from_config(tmp_path):
    res = run("coordcheck", "hf:gpt2", "--widths", "16,32", "--steps", "1", "--seeds", "1",
              "--param", "sp", "-o", str(tmp_path), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert {"transformer.wte", "transformer.h.1.attn.c_attn", "lm_head"} <= set(
        data["slopes"]["sp"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coordcheck", "mlp", "--widths", "64,x"], "widths must be integers"),
        (["coordcheck", "mlp", "--widths", "64"], "at least two different widths"),
        (["coordcheck", "deep:depth=2"], "has no width: write {width} where it goes"),
        (["coordcheck", "mlp", "-m", "deep"], "two models given"),
        (["coordcheck", "mlp", "--param", "ntk"], "give sp, mup or sp,mup"),
        (["coordcheck", "mlp", "--optimizer", "lion"], "'lion' is not one of"),
        (["lrsweep", "--task", "nosuch"], "'nosuch' is not one of 'digits', 'text'"),
        (["lrsweep", "--lrs", "1e-3:1e-2"], "LOW:HIGH exponents of 2"),
        (["lrsweep", "--widths", "8"], "at least two different widths"),
    ],
)
def test_errors_are_one_line(args, message):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("initlab: error: ") and message in res.output, res.output
    assert res.output.strip().count("\n") == 0


def test_lrsweep_tiny_grid_json_and_resume(tmp_path):
    out = tmp_path / "lr"
    args = ["lrsweep", "--task", "digits", "--widths", "8,16", "--lrs", "-7:-5", "--seeds", "1",
            "--steps", "3", "-o", str(out)]  # fmt: skip
    res = run(*args, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert data["log2_lrs"] == [-7, -6, -5] and data["widths"] == [8, 16]
    assert len(data["cells"]) == 2 * 2 * 3  # parametrisations x widths x rates
    assert set(data["optima"]) == {"sp", "mup"} and set(data["optima"]["sp"]) == {"8", "16"}
    assert set(data["verdict"]["sp"]) == {"holds", "spread", "shift", "widths", "at_edge"}
    assert (out / "lrsweep.png").read_bytes()[:4] == b"\x89PNG"
    lines = (out / "cells.jsonl").read_text().splitlines()
    assert len(lines) == 12
    res = run(*args)  # everything measured: nothing trains again
    assert res.exit_code == 0, res.output
    assert "resuming: 12 runs already" in res.output and "optimal learning rate" in res.output
    assert len((out / "cells.jsonl").read_text().splitlines()) == 12
    res = run(*args[:-2], "--steps", "4", "-o", str(out))
    assert res.exit_code == 2 and "holds a sweep with other settings" in res.output


def test_coordcheck_needs_a_language_model_head(tmp_path):
    res = run("coordcheck", "hf:bert?num_hidden_layers=1&num_attention_heads=2&hidden_size={width}"
              "&intermediate_size=64&vocab_size=256", "--widths", "16,32", "--steps", "1",
              "--param", "sp", "-o", str(tmp_path))  # fmt: skip
    assert res.exit_code == 2 and "gives no next-token logits" in res.output, res.output
