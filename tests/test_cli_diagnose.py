"""``initlab diagnose``."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from initlab.cli import main


def test_diagnose_deep_relu_table_plots_json(tmp_path):
    out, js = tmp_path / "out", tmp_path / "rec.json"
    res = CliRunner().invoke(main, [
        "diagnose", "-m", "deep:depth=20,width=64", "-d", "synthetic:n=400,dim=16",
        "-p", "xavier,kaiming", "--policy", "lsuv", "--batch-size", "128",
        "-o", str(out), "--json-out", str(js),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "xavier" in res.output and "vanishing" in res.output
    for name in ("propagation.png", "histograms.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(js.read_text())
    assert list(data["diagnoses"]) == ["xavier", "kaiming", "lsuv"]
    flags = {k: v["flags"] for k, v in data["diagnoses"].items()}
    assert flags["xavier"]["vanishing"]["forward"] and not flags["kaiming"]["vanishing"]["forward"]


def test_diagnose_bad_inputs_are_one_line():
    for args, msg in [
        (["--policy", "kaimin"], "unknown entry"),
        (["--data", "mnist:/nonexistent"], "mnist"),
        (["--model", "nope"], "nope"),
    ]:
        res = CliRunner().invoke(main, ["diagnose", *args])
        assert res.exit_code == 2 and msg in res.output, res.output
        assert res.output.startswith("initlab: error: ")
        assert res.output.strip().count("\n") == 0


def test_diagnose_json_on_stdout_and_old_flags_still_work(tmp_path):
    args = ["diagnose", "--model", "deep:depth=3,width=16", "--dataset", "synthetic:n=200,dim=8",
            "--schemes", "kaiming", "--batch", "64", "-o", str(tmp_path), "--json"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    warnings = [x for x in res.output.splitlines() if x.startswith("initlab: warning: ")]
    assert sorted(warnings) == [
        "initlab: warning: option --batch is deprecated; use --batch-size",
        "initlab: warning: option --dataset is deprecated; use --data",
        "initlab: warning: option --schemes is deprecated; use --policy",
    ]
    data = json.loads("\n".join(x for x in res.output.splitlines() if not x.startswith("initlab:")))
    assert list(data["diagnoses"]) == ["kaiming"]
    assert len(data["rows"]) >= 4  # 3 hidden layers + head, one row per layer
    res = CliRunner().invoke(main, ["diagnose", "--batch", "8", "--batch-size", "8"])
    assert res.exit_code == 2 and "--batch and its new name were both given" in res.output


def test_diagnose_checks_out_before_any_work(tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    for args, msg in [
        (["--out", "/proc/initlab-x"], "--out /proc/initlab-x: cannot write in /proc/initlab-x"),
        (["--out", str(a_file)], "Invalid value for '-o' / '--out'"),
        (["--json-out", str(tmp_path)], "Invalid value for '--json-out'"),
        (["--json-out", "/proc/initlab-x/r.json"], "--json-out /proc/initlab-x/r.json: cannot"),
    ]:
        start = time.perf_counter()
        res = CliRunner().invoke(main, ["diagnose", *args])
        assert time.perf_counter() - start < 2.0  # before the data set, model and diagnosis
        assert res.exit_code == 2 and res.output.startswith(f"initlab: error: {msg}"), res.output
        assert res.output.strip().count("\n") == 0
    assert not (tmp_path / "initlab-out").exists()


def test_diagnose_progress_on_a_terminal_only_and_never_in_json(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    base = ["diagnose", "-m", "deep:depth=4,width=16", "-d", "synthetic:n=200,dim=8",
            "-p", "xavier,kaiming", "--batch-size", "64"]  # fmt: skip
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "diagnosing xavier (1/2)" in res.stderr and "diagnosing kaiming (2/2)" in res.stderr
    assert "diagnosing" not in res.stdout
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--json"])
    assert res.exit_code == 0, res.output
    assert "diagnosing" not in res.stderr
    assert list(json.loads(res.stdout)["diagnoses"]) == ["xavier", "kaiming"]
    monkeypatch.delenv("FORCE_COLOR")
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "c")])
    assert res.exit_code == 0 and "diagnosing" not in res.output  # not a terminal: quiet


GPT2 = (
    "hf:gpt2?n_layer=2&n_embd=64&n_head=4&vocab_size=128&n_positions=32"
    "&bos_token_id=0&eos_token_id=0"
)


def test_diagnose_an_hf_language_model_sees_its_conv1d_layers(tmp_path):
    pytest.importorskip("transformers")
    res = CliRunner().invoke(main, [
        "diagnose", "-m", GPT2, "-p", "kaiming,lsuv", "--batch-size", "8", "--json",
        "-o", str(tmp_path / "out"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert list(data["diagnoses"]) == ["kaiming", "lsuv"]
    rows = [r for r in data["rows"] if r["scheme"] == "kaiming"]
    assert [r["kind"] for r in rows] == ["Conv1D"] * 8 + ["Linear"]
    # the LM is diagnosed on token ids with its next-token cross-entropy (a custom loss_fn)
    assert data["diagnoses"]["kaiming"]["loss_name"] == "custom"
    lsuv = [r["output_std"] for r in data["rows"] if r["scheme"] == "lsuv"][:8]
    assert all(abs(s - 1) < 0.05 for s in lsuv), lsuv


def test_compare_refuses_a_token_id_model_in_one_line():
    pytest.importorskip("transformers")
    res = CliRunner().invoke(main, ["compare", "-m", GPT2, "-p", "kaiming", "--seeds", "1"])
    assert res.exit_code == 2 and res.output.startswith("initlab: error: "), res.output
    assert "takes token ids" in res.output and "initlab diagnose" in res.output
    assert res.output.strip().count("\n") == 0


def test_a_model_that_does_not_take_the_data_sets_examples_is_one_line(tmp_path):
    factory = tmp_path / "images.py"
    factory.write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())\n"
    )
    res = CliRunner().invoke(main, ["diagnose", "-m", f"{factory}:build", "-p", "kaiming"])
    assert res.exit_code == 2 and res.output.startswith("initlab: error: "), res.output
    assert "does not take the examples of data set 'digits' (shape (64,))" in res.output
    assert "conv2d" in res.output and res.output.strip().count("\n") == 0
