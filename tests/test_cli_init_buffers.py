"""`initlab init --buffers FILE`: buffers the model's code does not make, from a file."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from initlab.cli import main

FACTORY = """
import torch
from torch import nn

class WithTable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("table", torch.empty(3, device="meta"))  # no value known

def build():
    return WithTable()
"""


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_unknown_buffer_error_names_the_option_and_the_option_fixes_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    out = tmp_path / "ckpt/"
    res = run("init", f"{f}:build", "-p", "xavier_uniform", "--out", str(out) + "/")
    assert res.exit_code == 2, res.output
    assert "table" in res.output and "--buffers FILE" in res.output
    bfile = tmp_path / "buffers.safetensors"
    save_file({"table": torch.tensor([1.0, 2.0, 3.0])}, str(bfile))
    res = run("init", f"{f}:build", "-p", "xavier_uniform", "--buffers", str(bfile),
              "--out", str(out) + "/")  # fmt: skip
    assert res.exit_code == 0, res.output
    index = json.loads((out / "model.safetensors.index.json").read_text())
    tensors = {}
    for name in set(index["weight_map"].values()):
        tensors.update(load_file(str(out / name)))
    assert torch.equal(tensors["table"], torch.tensor([1.0, 2.0, 3.0]))


def test_buffers_file_errors_are_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    bad = tmp_path / "bad.pt"
    torch.save({"table": torch.zeros(3), "nope": torch.zeros(3)}, bad)
    res = run("init", f"{f}:build", "-p", "xavier_uniform", "--buffers", str(bad),
              "--out", str(tmp_path / "o") + "/")  # fmt: skip
    assert res.exit_code == 2 and "names no buffer of the model: nope" in res.output, res.output
    junk = tmp_path / "junk.pt"
    junk.write_text("not a file torch can read")
    res = run("init", f"{f}:build", "-p", "xavier_uniform", "--buffers", str(junk),
              "--out", str(tmp_path / "o2") + "/")  # fmt: skip
    assert res.exit_code == 2 and "cannot read" in res.output, res.output
