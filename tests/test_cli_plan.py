"""``initlab plan`` / ``initlab init``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from initlab.cli import main

FACTORY = """
from torch import nn
def small():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
def lazy():
    return nn.Sequential(nn.LazyLinear(3))
def not_a_model():
    return 3
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_plan_and_init_from_file_factory(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    res = run("plan", f"{f}:small", "--policy", "kaiming", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [p["name"] for p in data["parameters"]] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(p["status"] == "planned" for p in data["parameters"])
    out = tmp_path / "state.pt"
    res = run("init", f"{f}:small", "--policy", "xavier", "--seed", "3", "--out", str(out))
    assert res.exit_code == 0, res.output
    sd = torch.load(out)
    assert (sd["0.bias"] == 0).all() and sd["0.weight"].shape == (8, 4)
    res2 = run("init", f"{f}:small", "--policy", "xavier", "--seed", "3", "--out", str(out) + "2")
    assert res2.exit_code == 0
    assert torch.equal(torch.load(str(out) + "2")["0.weight"], sd["0.weight"])


def test_one_clear_line_errors(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    cases = [
        ((f"{f}:nope", "--policy", "kaiming"), "has no attribute 'nope'"),
        ((f"{tmp_path}/missing.py:small", "--policy", "kaiming"), "does not exist"),
        (("no_such_pkg_xyz:build", "--policy", "kaiming"), "cannot import module"),
        ((f"{f}:not_a_model", "--policy", "kaiming"), "not an nn.Module"),
        ((f"{f}:small", "--policy", "kaimin"), "did you mean 'kaiming'"),
        ((f"{f}:lazy", "--policy", "kaiming"), "forward pass"),
    ]
    for args, msg in cases:
        res = run("plan", *args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("initlab: error: "), res.output
        assert msg in res.output, (args, res.output)
        assert res.output.strip().count("\n") == 0, res.output  # one line


def test_bad_policy_file_and_strict(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    bad = tmp_path / "p.yaml"
    bad.write_text("rules:\n  - scheme: kaiming_normal\n    modul: Linear\n")
    res = run("plan", f"{f}:small", "--policy", str(bad))
    assert res.exit_code == 2 and "rules[0]" in res.output and "module" in res.output
    broken = tmp_path / "q.json"
    broken.write_text("{ not json")
    res = run("plan", f"{f}:small", "--policy", str(broken))
    assert res.exit_code == 2 and "q.json" in res.output
    only_w = tmp_path / "w.yaml"
    only_w.write_text("rules:\n  - param: weight\n    scheme: xavier_uniform\n")
    res = run(
        "init", f"{f}:small", "--policy", str(only_w), "--strict", "--out", str(tmp_path / "x.pt")
    )
    assert res.exit_code == 2 and "0.bias, 2.bias" in res.output
    assert res.output.strip().count("\n") == 0
    assert not (tmp_path / "x.pt").exists()


def test_init_refuses_to_overwrite_without_force(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    out = tmp_path / "state.pt"
    out.write_bytes(b"precious")
    args = ("init", f"{f}:small", "--policy", "xavier", "--out", str(out))
    res = run(*args)
    assert res.exit_code != 0
    assert f"--out {str(out)!r} exists; pass --force to replace it" in res.output
    assert out.read_bytes() == b"precious"
    res = run(*args, "--force")
    assert res.exit_code == 0, res.output
    assert torch.load(out)["0.weight"].shape == (8, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "state.pt"]  # no temp file


def test_init_folder_refuses_a_full_folder_without_force_and_replaces_it_with(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "old.txt").write_text("old")
    args = ("init", f"{f}:small", "--policy", "xavier", "--out", f"{out}/")
    res = run(*args)
    assert res.exit_code != 0 and "exists and is not empty; pass --force" in res.output
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    res = run(*args, "--force")
    assert res.exit_code == 0, res.output
    assert "old.txt" not in {p.name for p in out.iterdir()}
    assert (out / "model.safetensors.index.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "model.py"]  # nothing aside


def test_init_pt_write_failure_leaves_no_file(tmp_path, monkeypatch):
    """torch.save cut short (here: it raises after writing some bytes) leaves neither the
    final file nor the temporary one."""
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    out = tmp_path / "state.pt"

    def broken_save(obj, path):  # type: ignore[no-untyped-def]
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    res = run("init", f"{f}:small", "--policy", "xavier", "--out", str(out))
    assert res.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]
