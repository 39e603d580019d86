"""`initlab mup MODEL --base BASE`: the muP table, as text and JSON, and its errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

import initlab
from initlab.cli import main

GPT2 = "hf:gpt2?n_layer=1&n_head=2&vocab_size=32&n_positions=16&bos_token_id=0&eos_token_id=0"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_table_of_an_mlp():
    res = run("mup", "mlp:widths=256", "--base", "mlp:widths=64")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    head = next(line for line in lines if "head.weight" in line)
    assert [c.strip() for c in head.split("│")[1:-1]] == [
        "head.weight", "output", "4", "0.07217", "1", "4", "0.25",
    ]  # fmt: skip
    assert "readout multipliers (multiplier, on attach): head x 0.25" in res.output
    assert lines[-1] == "full muP"


def test_json_of_gpt2_with_a_dim_map_equals_the_api():
    res = run("mup", f"{GPT2}&n_embd=128", "--base", "n_embd=32", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["params"]["transformer.h.0.mlp.c_fc.weight"]["lr_mult_adam"] == 0.25
    assert data["readouts"] == {"lm_head": 0.25}
    assert data["init"] == "hf_auto"
    with initlab.meta_build():
        model = initlab.build_model(f"{GPT2}&n_embd=128")
    assert initlab.Mup.from_dict(data) == initlab.mup(model, {"n_embd": 32})


def test_errors_are_one_line_exit_2():
    res = run("mup", "mlp:widths=256", "--base", "width=64")
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "initlab: error: a {dim_name: size} base needs a model with a .config (Sequential has "
        "none): pass a base model instead (with initlab.meta_build(): base = ...)"
    ]
    res = run("mup", "mlp:widths=256", "--base", "mlp:widths=64-64")
    assert res.exit_code == 2
    assert "the base model has parameter(s) the model lacks" in res.output
    res = run("mup", "nosuchmodel", "--base", "mlp")
    assert res.exit_code == 2 and "MODEL_SPEC" in res.output
