"""``initlab diagnose``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from initlab.cli import main


def test_diagnose_deep_relu_table_plots_json(tmp_path):
    out, js = tmp_path / "out", tmp_path / "rec.json"
    res = CliRunner().invoke(main, [
        "diagnose", "--model", "deep:depth=20,width=64", "--dataset", "synthetic:n=400,dim=16",
        "--schemes", "xavier,kaiming", "--schemes", "lsuv", "--batch", "128",
        "--out", str(out), "--json", str(js),
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
        (["--schemes", "kaimin"], "unknown entry"),
        (["--dataset", "mnist:/nonexistent"], "mnist"),
        (["--model", "nope"], "nope"),
    ]:
        res = CliRunner().invoke(main, ["diagnose", *args])
        assert res.exit_code == 1 and msg in res.output, res.output
        assert res.output.strip().count("\n") == 0
