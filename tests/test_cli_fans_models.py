"""`initlab fans MODEL PARAM` for any model spec, built on meta (shapes only)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from initlab.cli import main

FACTORY = """
from torch import nn

def build():
    return nn.Sequential(nn.Linear(4, 8), nn.LSTM(8, 6))
"""


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_fans_of_a_factory_model_by_dotted_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "m.py"
    f.write_text(FACTORY)
    res = run("fans", f"{f}:build", "1.weight_hh_l0", "--json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert (row["fan_in"], row["fan_out"], row["shape"]) == (6, 6, [24, 6])
    assert [b[0] for b in row["blocks"]] == ["i", "f", "g", "o"]


def test_fans_of_a_zoo_model_and_the_old_expressions() -> None:
    res = run("fans", "mlp:widths=32", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["fan_in"] == 64
    res = run("fans", "nn.Linear(3, 5)", "weight", "--json")
    assert json.loads(res.output)[0]["fan_in"] == 3


def test_unknown_model_is_one_line() -> None:
    res = run("fans", "no_such_model_xyz", "weight")
    assert res.exit_code == 2 and res.output.startswith("initlab: error: "), res.output
    assert "nn.Conv2d" in res.output


def test_fans_of_an_hf_model_from_a_factory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers", reason="HF models need transformers")
    f = tmp_path / "g.py"
    f.write_text(
        "import transformers\n"
        "def build():\n"
        "    return transformers.GPT2Model(transformers.GPT2Config(\n"
        "        n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32))\n"
    )
    res = run("fans", f"{f}:build", "h.0.ln_1.weight", "--json")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert (row["fan_in"], row["fan_out"], row["role"]) == (1, 1, "norm_scale")


def test_fans_of_gpt2_c_attn_from_an_hf_spec() -> None:
    pytest.importorskip("transformers", reason="HF models need transformers")
    spec = "hf:gpt2?n_layer=2&n_embd=64&n_head=4&vocab_size=100&n_positions=32"
    res = run("fans", spec, "transformer.h.0.attn.c_attn.weight")
    assert res.exit_code == 0, res.output
    # Conv1D [in, out]: 64 in, three blocks q/k/v of 64 outputs each, 192 for the tensor
    assert "64 per block (192 in all)" in res.output and "q,k,v (3 x 64)" in res.output
    (row,) = json.loads(run("fans", spec, "transformer.h.0.attn.c_attn.weight", "--json").output)
    assert (row["fan_in"], row["fan_out"], [b[0] for b in row["blocks"]]) == (64, 64, list("qkv"))
