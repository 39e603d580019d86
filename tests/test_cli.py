"""The initlab command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from initlab.cli import main
from initlab.schemes import list_schemes


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_schemes_table_lists_every_scheme():
    res = run("schemes")
    assert res.exit_code == 0, res.output
    for cls in list_schemes():
        assert cls.name in res.output


def test_schemes_json_has_formula_parameters_paper():
    res = run("schemes", "--json")
    rows = json.loads(res.output)["schemes"]
    assert {r["name"] for r in rows} == {c.name for c in list_schemes()}
    k = next(r for r in rows if r["name"] == "kaiming_normal")
    assert "he_normal" in k["aliases"] and "nonlinearity='leaky_relu'" in k["parameters"]
    assert "He et al. 2015" in k["paper"]


def test_schemes_lists_every_lab_entry_with_its_formula():
    data = json.loads(run("schemes", "--json").output)
    entries = {r["name"]: r for r in data["lab_entries"]}
    expected = ("uniform_rule", "normal_rule", "uniform_centered", "uniform", "ones", "zeros",
                "xavier", "kaiming", "lecun", "orthogonal", "torch_default", "lsuv")  # fmt: skip
    assert set(expected) <= set(entries)
    assert entries["kaiming"]["formula"].startswith("W ~ N(0, 2/fan_in)")
    assert entries["kaiming"]["runs"] == "preset kaiming"
    assert entries["uniform_centered"]["runs"] == "every weight uniform(a=-0.5, b=0.5), biases 0"
    res = run("schemes")
    assert res.exit_code == 0 and "lab entries (" in res.output
    for name in expected:
        assert name in res.output.split("lab entries (")[1]
    assert "W ~ U[-1/√fan_in, 1/√fan_in]" in res.output


def test_fans_json_for_the_issue_examples():
    res = run("fans", "nn.ConvTranspose2d(16, 32, 3, groups=4)", "weight", "--json")
    (row,) = json.loads(res.output)
    assert (row["fan_in"], row["fan_out"], tuple(row["torch"])) == (36, 72, (72, 144))
    res = run("fans", "nn.Conv2d(32, 32, 3, groups=32)", "weight", "--json")
    assert json.loads(res.output)[0]["fan_out"] == 9
    res = run("fans", "nn.MultiheadAttention(64, 4)", "in_proj_weight", "--json")
    (row,) = json.loads(res.output)
    assert [b[0] for b in row["blocks"]] == ["q", "k", "v"] and row["fan_out"] == 64


def test_fans_table_all_parameters():
    res = run("fans", "nn.LSTM(10, 20, num_layers=2, bidirectional=True)")
    assert res.exit_code == 0
    assert "weight_hh_l1_reverse" in res.output and "i,f,g,o" in res.output


def test_fans_bad_expression_is_one_clear_error():
    res = run("fans", "nn.Conv2d(3, 3, kernel=3)")
    assert res.exit_code == 2
    assert "could not build" in res.output and "TypeError" in res.output
    res = run("fans", "torch.zeros(3)")
    assert res.exit_code == 2 and "not an nn.Module" in res.output
    res = run("fans", "nn.Linear(3, 4)", "wieght")
    assert res.exit_code == 2 and "weight" in res.output


def test_gain_command():
    res = run("gain", "relu")
    assert res.exit_code == 0 and "1.414213562" in res.output
    res = run("gain", "leaky_relu", "--param", "0.2")
    assert "1.386750491" in res.output  # sqrt(2 / 1.04)
    res = run("gain", "nope")
    assert res.exit_code == 2 and "relu" in res.output
