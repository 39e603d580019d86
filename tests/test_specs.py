"""initlab.specs: the one grammar for schemes, policies and models (and its name normaliser)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import initlab
from initlab import ModelError, Policy, PolicyError, Rule, get_preset, get_scheme
from initlab.specs import (
    build_model,
    load_policy,
    model_sources,
    register_model_source,
    resolve_scheme,
    scheme_policy,
)
from initlab.syntax import SpecError, canonical_name, format_spec, parse_spec


# -- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "shown"),
    [("xavier-uniform", "xavier_uniform"), (" Torch_Default ", "torch_default"), ("GPT2", "gpt2")],
)
def test_one_normaliser_shows_underscores(typed: str, shown: str) -> None:
    assert canonical_name(typed) == shown


def test_hyphens_and_underscores_everywhere() -> None:
    assert resolve_scheme("xavier-uniform") == get_scheme("xavier_uniform")
    assert (
        load_policy("torch-default") == load_policy("TORCH_DEFAULT") == get_preset("torch_default")
    )
    assert load_policy("kaiming-normal:mode=fan_out") == load_policy("kaiming_normal:mode=fan_out")
    assert get_preset("linear-xavier-conv-kaiming").name == "linear_xavier_conv_kaiming"
    assert all("-" not in name for name in initlab.list_presets())
    assert isinstance(build_model("MLP:widths=8"), nn.Sequential)


# -- schemes and one-rule policies -------------------------------------------------------------
def test_a_rule_takes_a_scheme_spec() -> None:
    rule = Rule("kaiming_normal:mode=fan_out", param="weight")
    assert rule.scheme == get_scheme("kaiming_normal", mode="fan_out")
    with pytest.raises(PolicyError, match="did you mean 'mode'"):
        Rule("kaiming_normal:mdoe=fan_out")


def test_scheme_specs() -> None:
    s = resolve_scheme("kaiming_normal:mode=fan_out,nonlinearity=relu")
    assert s == get_scheme("kaiming_normal", mode="fan_out", nonlinearity="relu")
    assert resolve_scheme("he_normal") == get_scheme("kaiming_normal")  # aliases too
    assert resolve_scheme({"name": "normal", "std": 0.5}) == get_scheme("normal", std=0.5)
    assert resolve_scheme(s) is s


def test_a_scheme_is_a_one_rule_policy_everywhere() -> None:
    pol = load_policy("xavier_uniform")
    assert pol == scheme_policy("xavier_uniform")
    assert pol.name == "xavier_uniform" and len(pol.rules) == 1
    assert pol.rules[0].scheme == get_scheme("xavier_uniform") and pol.rules[0].id == "all"
    assert load_policy("normal:std=0.5").name == "normal:std=0.5"
    # initialize and plan take it: every parameter gets the scheme, fans from the layer
    m = nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 4))
    report = initlab.initialize(m, "zeros", seed=0)
    assert all(r.scheme.name == "zeros" for r in report.rows)
    assert all(torch.count_nonzero(p) == 0 for p in m.parameters())
    rows = initlab.plan(m, "normal:std=0.25", 0).rows
    assert {r.scheme.to_config()["std"] for r in rows} == {0.25}


def test_presets_win_over_schemes_of_the_same_name() -> None:
    assert load_policy("torch_default") == get_preset("torch_default")
    assert load_policy("kaiming") == get_preset("kaiming")  # not a scheme alias


def test_policy_sources() -> None:
    pol = Policy(rules=(Rule("zeros"),))
    assert load_policy(pol) is pol
    assert load_policy({"rules": [{"scheme": "zeros"}]}) == pol
    assert load_policy("gpt2:n_layers=3") == get_preset("gpt2", n_layers=3)


def test_deprecated_preset_names_warn_with_the_new_name() -> None:
    for old, new in [
        ("seeds-xavier-kaiming", "linear_xavier_conv_kaiming"),
        ("seeds_orthogonal", "orthogonal_weights"),
    ]:
        with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated.*use '{new}'"):
            assert load_policy(old) == get_preset(new)
    assert "seeds_orthogonal" not in initlab.list_presets()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("kaimng_normal", "unknown policy 'kaimng_normal' (did you mean 'kaiming_normal'?)"),
        ("gpt2:12", "arguments are key=value"),
        ("normal:std=-1", "scheme 'normal:std=-1'"),
        ("normal:sdt=1", "did you mean 'std'?"),
        (":x=1", "missing name"),
        ("a:b=1,,c=2", "empty item"),
        (3, "expected a Policy, a mapping"),
    ],
)
def test_policy_errors_are_one_line(source: object, message: str) -> None:
    with pytest.raises(PolicyError) as e:
        load_policy(source)  # type: ignore[arg-type]
    assert message in str(e.value) and "\n" not in str(e.value)


def test_scheme_errors() -> None:
    with pytest.raises(PolicyError, match="parameters are key=value"):
        resolve_scheme("normal:0.5")
    with pytest.raises(PolicyError, match="empty item"):
        resolve_scheme("normal:std=1,,mean=0")
    with pytest.raises(PolicyError, match="unknown scheme 'nope'"):
        resolve_scheme("nope")


# -- the grammar -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec", ["mlp", "mlp:dropout=0.1,widths=64-32", "mnist:/data/m", "x:a=true,b=none,c=1e-05"]
)
def test_format_reads_back(spec: str) -> None:
    name, kwargs = parse_spec(spec)
    assert format_spec(name, kwargs) == spec
    assert parse_spec(format_spec(name, kwargs)) == (name, kwargs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("x:a=1,a=2", "key 'a' given twice"), ("x:", "nothing after ':'"), ("x:1a=2", "invalid key")],
)
def test_grammar_errors(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_values() -> None:
    assert parse_spec("x:a=1,b=0.5,c=TRUE,d=null,e=relu") == (
        "x",
        {"a": 1, "b": 0.5, "c": True, "d": None, "e": "relu"},
    )


# -- models ----------------------------------------------------------------------------------
def test_zoo_specs_with_and_without_data_shapes() -> None:
    m = build_model("mlp")
    assert m.fc1.in_features == 64 and m.head.out_features == 10  # digits by default
    m = build_model("cnn:channels=4-8,batchnorm=true", (1, 8, 8), 3)
    assert m.conv1.out_channels == 4 and m.head.out_features == 3
    assert len([x for x in build_model("deep:depth=3,width=8") if isinstance(x, nn.Linear)]) == 4


def test_factory_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "nets.py"
    f.write_text(
        "from torch import nn\n"
        "def small(num_classes=2):\n    return nn.Linear(3, num_classes)\n"
        "def plain():\n    return nn.Linear(3, 1)\n"
    )
    assert build_model(f"{f}:small").out_features == 2
    assert build_model(f"{f}:small", (3,), 5).out_features == 5  # offered when accepted
    assert build_model(f"{f}:plain", (3,), 5).out_features == 1
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nets", raising=False)
    assert build_model("nets:plain").in_features == 3


def test_registered_prefixes_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab import specs

    monkeypatch.setattr(specs, "_SOURCES", {})
    seen = []

    def build(rest: str, offered: dict) -> nn.Module:  # type: ignore[type-arg]
        seen.append((rest, offered))
        return nn.Linear(2, 2)

    register_model_source("hf", build)
    assert model_sources() == ["hf"]
    assert isinstance(build_model("hf:gpt2?n_layer=2", num_classes=3), nn.Linear)
    assert seen == [("gpt2?n_layer=2", {"num_classes": 3})]
    with pytest.raises(ValueError, match="hide the built-in model 'mlp'"):
        register_model_source("MLP", build)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mpl", "unknown model 'mpl' (did you mean 'mlp'?)"),
        ("mlp:widht=3", "unknown option 'widht'"),
        ("mlp:64", "options are key=value"),
        ("no_such_module_x:f", "cannot import module 'no_such_module_x'"),
        ("missing_dir/m.py:f", "does not exist"),
        ("math:pi", "is not callable"),
        ("builtins:dict", "not an nn.Module"),
        ("", "non-empty string"),
    ],
)
def test_model_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(ModelError) as e:
        build_model(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


# -- docs ------------------------------------------------------------------------------------
def test_docstring_examples_run() -> None:
    """The Examples of the new modules (in a subprocess: one registers a preset)."""
    code = (
        "import doctest, sys, initlab.specs, initlab.syntax, initlab.refs, initlab.zoo, "
        "initlab.policy.presets, initlab.policy.files, initlab.cli.options\n"
        "mods = [initlab.specs, initlab.syntax, initlab.refs, initlab.zoo, "
        "initlab.policy.presets, initlab.policy.files, initlab.cli.options]\n"
        "r = [doctest.testmod(m) for m in mods]\n"
        "sys.exit(sum(x.failed for x in r) or not all(x.attempted for x in r))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_warning_for_current_names(preset_args) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, kwargs in preset_args.items():
            load_policy(format_spec(name, kwargs))
