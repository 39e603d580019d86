"""The README's example model file: ``initlab plan`` / ``initlab init`` on examples/my_model.py."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from initlab.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_model.py"
README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_shows_the_example_commands():
    text = README.read_text()
    assert "initlab plan examples/my_model.py:build -p kaiming" in text
    assert "initlab init examples/my_model.py:build -p kaiming --seed 0 -o /tmp/state.pt" in text


def test_plan_example_model():
    res = CliRunner().invoke(main, ["plan", f"{EXAMPLE}:build", "-p", "kaiming", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)["parameters"]}
    assert list(rows) == [f"{i}.{p}" for i in (0, 3, 7) for p in ("weight", "bias")]
    assert rows["7.weight"]["target_std"] == 0.25  # sqrt(2 / fan_in), fan_in 32
    assert rows["3.weight"]["fan_in"] == 16 * 3 * 3 and rows["7.bias"]["target_std"] == 0


def test_init_example_model(tmp_path):
    out = tmp_path / "state.pt"
    args = ["init", f"{EXAMPLE}:build", "-p", "kaiming", "--seed", "0", "-o", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    state = torch.load(out)
    assert set(state) == {f"{i}.{p}" for i in (0, 3, 7) for p in ("weight", "bias")}
    w = state["7.weight"]  # kaiming_normal, relu: std sqrt(2 / 32) = 0.25
    assert w.shape == (10, 32) and 0.15 < float(w.std()) < 0.35
    again = tmp_path / "again.pt"
    res = CliRunner().invoke(main, [*args[:-1], str(again)])
    assert res.exit_code == 0 and torch.equal(torch.load(again)["0.weight"], state["0.weight"])


def test_init_status_line_on_a_terminal_only_and_never_in_json(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    args = ["init", f"{EXAMPLE}:build", "-p", "kaiming", "--seed", "0"]
    res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a.pt")])
    assert res.exit_code == 0, res.output
    n = 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 10 + 10
    assert f"initlab: initializing {n:,} parameters in place" in res.stderr
    assert "initializing" not in res.stdout
    res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b.pt"), "--json"])
    assert res.exit_code == 0 and "initializing" not in res.stderr
    json.loads(res.stdout)  # pure JSON
