"""Init policies: rule matching, resolution, files (YAML/TOML/JSON), errors and presets."""

from __future__ import annotations

import fnmatch
import json
import math
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from initlab import compute_fans, get_scheme
from initlab.policy import (
    ParamInfo,
    Policy,
    PolicyError,
    Resolution,
    Rule,
    dumps_policy,
    get_preset,
    list_presets,
    loads_policy,
    save_policy,
)
from initlab.policy.patterns import compile_pattern
from initlab.specs import load_policy

LSTM_GATES = ("i", "f", "g", "o")


def info(
    qualname: str = "fc.weight",
    module_type: type = nn.Linear,
    shape: tuple[int, ...] = (4, 3),
    blocks: tuple[str, ...] = (),
) -> ParamInfo:
    module_name, _, param_name = qualname.rpartition(".")
    return ParamInfo(qualname, module_name, param_name, module_type, shape, blocks)


def infos(model: nn.Module) -> dict[str, ParamInfo]:
    """ParamInfo of every parameter of ``model``, blocks from compute_fans."""
    out = {}
    for mname, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            q = f"{mname}.{pname}" if mname else pname
            try:
                fans = compute_fans(mod, pname)
                blocks = tuple(b.name for b in fans.blocks)
                role = None if fans.rule == "shape-fallback" else fans.role  # as plan does
            except ValueError:
                blocks, role = (), None
            out[q] = ParamInfo(q, mname, pname, type(mod), tuple(p.shape), blocks, role)
    return out


def scheme_of(policy: Policy, i: ParamInfo):
    res = policy.resolve(i)
    return None if res.rule is None else res.rule.scheme


class MyLinear(nn.Linear):
    pass


# -- module types --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [nn.Linear, "Linear", "torch.nn.Linear", "torch.nn.modules.linear.Linear", "nn.Linear"],
)
def test_module_spec_forms_match_linear_and_subclasses(spec):
    rule = Rule("zeros", module=spec)
    assert rule.matches(info(module_type=nn.Linear))
    assert rule.matches(info(module_type=MyLinear))  # isinstance semantics
    mha_out = type(nn.MultiheadAttention(4, 2).out_proj)  # NonDynamicallyQuantizableLinear
    assert rule.matches(info(module_type=mha_out))
    assert not rule.matches(info(module_type=nn.Conv2d, shape=(4, 3, 3, 3)))


def test_module_classes_are_stored_as_dotted_strings():
    assert Rule("zeros", module=nn.Linear).module == ("torch.nn.Linear",)
    assert Rule("zeros", module=[nn.Conv2d, "BatchNorm2d"]).module == (
        "torch.nn.Conv2d",
        "BatchNorm2d",
    )
    rule = Rule("zeros", module=MyLinear)
    assert rule.module == (f"{__name__}.MyLinear",)
    assert rule.matches(info(module_type=MyLinear))
    assert not rule.matches(info(module_type=nn.Linear))


def test_module_base_class_path_and_local_user_class():
    conv = Rule("zeros", module="torch.nn.modules.conv._ConvNd")
    for cls in (nn.Conv1d, nn.Conv2d, nn.ConvTranspose3d):
        assert conv.matches(info(module_type=cls))
    assert not conv.matches(info(module_type=nn.Linear))

    class Local(nn.Module):
        pass

    rule = Rule("zeros", module=Local)
    assert "<locals>" in rule.module[0]
    assert rule.matches(info(module_type=Local))
    # a class of a package that is not installed is accepted and simply matches nothing
    assert not Rule("zeros", module="somepkg.layers.FancyAttention").matches(info())
    assert not Rule("zeros", module="FancyAttention").matches(info())


# -- patterns ------------------------------------------------------------------------------
def test_name_glob_crosses_dots_and_regex_fullmatches():
    deep = info("encoder.layers.0.fc.weight")
    assert Rule("zeros", name="encoder.*").matches(deep)
    assert Rule("zeros", name="*.fc").matches(deep)
    assert Rule("zeros", name="encoder.layers.?.fc").matches(deep)
    assert not Rule("zeros", name="encoder").matches(deep)
    assert Rule("zeros", name=r"re:encoder\.layers\.\d+\.fc").matches(deep)
    assert not Rule("zeros", name=r"re:encoder\.layers").matches(deep)  # fullmatch
    root = info("weight")
    assert root.module_name == ""
    assert Rule("zeros", name="").matches(root)
    assert not Rule("zeros", name="").matches(deep)
    assert Rule("zeros", name="*").matches(root)


def test_param_glob_and_regex():
    hh = info("rnn.weight_hh_l1_reverse", nn.LSTM, (12, 3), LSTM_GATES)
    assert Rule("zeros", param="weight_hh_l*").matches(hh)
    assert not Rule("zeros", param="weight_ih_l*").matches(hh)
    assert Rule("zeros", param=r"re:weight_(ih|hh)_l\d+(_reverse)?").matches(hh)
    assert not Rule("zeros", param="re:weight").matches(hh)
    assert Rule("zeros", param="[wb]*").matches(hh)


@given(
    pattern=st.text(alphabet="ab.*?[]!_", max_size=8).filter(lambda p: not p.startswith("re:")),
    name=st.text(alphabet="ab._", max_size=8),
)
@settings(max_examples=300, deadline=None)
def test_glob_is_fnmatchcase(pattern, name):
    assert (compile_pattern(pattern).fullmatch(name) is not None) == fnmatch.fnmatchcase(
        name, pattern
    )


def test_ndim_and_shape():
    w = info(shape=(3072, 768))
    assert Rule("zeros", ndim=2).matches(w)
    assert not Rule("zeros", ndim=1).matches(w)
    assert Rule("zeros", ndim=(1, 2)).matches(w)
    assert Rule("zeros", ndim=[2, 4]).ndim == (2, 4)
    assert Rule("zeros", shape=(None, 768)).matches(w)
    assert Rule("zeros", shape=[3072, "*"]).shape == (3072, None)
    assert not Rule("zeros", shape=(768, None)).matches(w)
    assert not Rule("zeros", shape=(None, 768, None)).matches(w)
    assert Rule("zeros", shape=()).matches(info(shape=()))


# -- resolution ----------------------------------------------------------------------------
def test_first_match_wins_and_unmatched():
    pol = Policy(
        rules=(
            Rule("ones", module="Linear", param="bias"),
            Rule("zeros", param="bias"),
            Rule("xavier_uniform", module="Linear"),
        )
    )
    assert pol.resolve(info("fc.bias", shape=(4,))).rule_index == 0
    assert pol.resolve(info("conv.bias", nn.Conv2d, (4,))).rule_index == 1
    res = pol.resolve(info("fc.weight"))
    assert (res.rule_index, res.rule) == (2, pol.rules[2])
    miss = pol.resolve(info("bn.weight", nn.BatchNorm2d, (4,)))
    assert miss == Resolution(None, None, ())
    assert not miss.matched


def lstm_infos() -> dict[str, ParamInfo]:
    return {k: v for k, v in infos(nn.Sequential(nn.LSTM(4, 3))).items()}


def test_lstm_forget_gate_block_rule():
    pol = Policy(
        rules=(
            Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
            Rule("zeros", module="LSTM", param="bias_*"),
            Rule("orthogonal", module="LSTM", param="weight_hh_*"),
        )
    )
    bias = lstm_infos()["0.bias_ih_l0"]
    assert bias.block_names == LSTM_GATES
    res = pol.resolve(bias)
    assert res.rule_index == 1 and res.rule.scheme == get_scheme("zeros")
    assert res.block_rules == (("f", 0, pol.rules[0]),)
    assert res.block_rules[0][2].scheme == get_scheme("constant", val=1.0)
    assert res.covers(bias.block_names)
    hh = pol.resolve(lstm_infos()["0.weight_hh_l0"])  # the block rule's param does not match
    assert hh.rule_index == 2 and hh.block_rules == ()


def test_block_rule_order_and_partial_coverage():
    bias = lstm_infos()["0.bias_hh_l0"]
    after = Policy(rules=(Rule("zeros", param="bias_*"), Rule("ones", param="bias_*", block="f")))
    assert after.resolve(bias).block_rules == ()  # the whole rule came first: it wins every block
    only = Policy(
        rules=(Rule("ones", param="bias_*", block="f"), Rule("zeros", param="bias_*", block="i"))
    )
    res = only.resolve(bias)
    assert res.rule is None and res.matched
    assert [(b, i) for b, i, _ in res.block_rules] == [("i", 1), ("f", 0)]  # block order
    assert not res.covers(bias.block_names)
    full = Policy(rules=tuple(Rule("zeros", param="bias_*", block=b) for b in LSTM_GATES))
    assert full.resolve(bias).covers(LSTM_GATES)


def test_block_rule_that_does_not_apply():
    rule = Rule("ones", param="*bias*", block="f")
    gru = infos(nn.Sequential(nn.GRU(4, 3)))["0.bias_ih_l0"]
    assert gru.block_names == ("r", "z", "n")
    mha = infos(nn.Sequential(nn.MultiheadAttention(8, 2)))
    assert mha["0.in_proj_bias"].block_names == ("q", "k", "v")
    for i in (gru, mha["0.in_proj_bias"], mha["0.out_proj.bias"], info("fc.bias", shape=(4,))):
        assert not rule.matches(i)
        res = Policy(rules=(rule, Rule("zeros"))).resolve(i)
        assert res.rule_index == 1 and res.block_rules == ()


def test_attention_block_rules():
    mha = infos(nn.Sequential(nn.MultiheadAttention(8, 2)))["0.in_proj_weight"]
    pol = Policy(
        rules=(
            Rule("zeros", module="MultiheadAttention", block="k"),
            Rule("orthogonal", module="MultiheadAttention", block="q"),
            Rule("xavier_uniform", module="MultiheadAttention"),
        )
    )
    res = pol.resolve(mha)
    assert res.rule_index == 2
    assert [(b, i) for b, i, _ in res.block_rules] == [("q", 1), ("k", 0)]


def test_exclude():
    pol = Policy(exclude=("encoder.*", r"re:head\.(weight|bias)"))
    assert pol.is_excluded("encoder.layers.0.weight")
    assert pol.is_excluded("head.bias")
    assert not pol.is_excluded("head.weight_g")
    assert not pol.is_excluded("decoder.weight")
    assert Policy(exclude="emb.weight").exclude == ("emb.weight",)


def test_unmatched_modes():
    i = info("bn.weight", nn.BatchNorm2d, (4,))
    assert Policy().unmatched_scheme(i) is None
    pol = Policy(unmatched="default", default="torch_default")
    assert pol.unmatched_scheme(i) == get_scheme("torch_default")
    strict = Policy(unmatched="error", name="strict")
    with pytest.raises(PolicyError, match=r"no rule of policy 'strict' matches parameter 'bn\."):
        strict.unmatched_scheme(i)


def test_ids_then_and_labels():
    a = Policy(rules=(Rule("zeros", param="bias"), Rule("ones", id="mine")), name="a")
    assert [r.id for r in a.rules] == ["rule[0]", "mine"]
    assert a.rule_label(0) == "rule[0]"
    assert "id" not in a.to_dict()["rules"][0] and a.to_dict()["rules"][1]["id"] == "mine"
    b = Policy(
        rules=(Rule("normal"), Rule("eye", id="b-eye")),
        unmatched="default",
        default="zeros",
        exclude=("x.*",),
        name="b",
    )
    c = Policy(rules=(Rule("ones"),), exclude=("x.*", "y"))
    ab = a.then(b)
    assert [r.id for r in ab.rules] == ["rule[0]", "mine", "rule[2]", "b-eye"]
    assert ab.rules[2].scheme == get_scheme("normal")
    assert (ab.unmatched, ab.default, ab.name) == ("default", get_scheme("zeros"), "a + b")
    assert b.then(c).exclude == ("x.*", "y")
    assert b.then(c).unmatched == "default"
    assert load_policy(ab.to_dict()) == ab


# -- files ---------------------------------------------------------------------------------
def rich_policy() -> Policy:
    return Policy(
        rules=(
            Rule(
                get_scheme("scaled", base=get_scheme("kaiming_normal", mode="fan_out"), factor=0.5),
                module=("Conv2d", nn.Linear),
                name="re:layer\\d+\\..*",
                param="weight",
                ndim=(2, 4),
            ),
            Rule(
                get_scheme("trunc_normal", std=0.02, a=-math.inf, b=math.inf),
                shape=(None, 768),
                id="trunc",
            ),
            Rule(
                get_scheme("variance_scaling", in_axis=(1, 2), out_axis=0, batch_axis=(3,)),
                ndim=4,
            ),
            Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
            Rule("zeros", param="*bias"),
        ),
        unmatched="default",
        default=get_scheme("normal", std=1e-3),
        exclude=("embed.*", "re:head\\..*"),
        name="rich",
        description='quotes " and \\ and ünïcode\nand a newline',
    )


@pytest.mark.parametrize("ext", [".yaml", ".yml", ".toml", ".json"])
def test_round_trip_files(tmp_path, ext):
    pol = rich_policy()
    path = save_policy(pol, tmp_path / f"policy{ext}")
    back = load_policy(path)
    assert back == pol
    assert back.rules[1].scheme.a == -math.inf and back.rules[1].scheme.b == math.inf
    assert back.rules[2].scheme.in_axis == (1, 2)
    assert back.rules[0].scheme.base == get_scheme("kaiming_normal", mode="fan_out")
    assert load_policy(str(path)) == pol


def test_toml_has_no_null_and_json_no_infinity():
    text = dumps_policy(rich_policy(), "toml")
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    shapes = [r.get("shape") for r in toml.loads(text)["rules"] if "shape" in r]
    assert "null" not in text and ["*", 768] in shapes
    data = json.loads(dumps_policy(rich_policy(), "json"))
    assert data["rules"][1]["scheme"]["a"] == "-inf"


def test_inline_params_and_yaml12_floats():
    text = """
name: inline
rules:
  - scheme: normal
    params: {std: 1e-3}
    param: weight
  - scheme: {name: kaiming_normal, mode: fan_out}
    params: {nonlinearity: relu}
"""
    pol = loads_policy(text, "yaml")
    assert pol.rules[0].scheme == get_scheme("normal", std=0.001)
    assert pol.rules[1].scheme == get_scheme("kaiming_normal", mode="fan_out", nonlinearity="relu")
    assert loads_policy(dumps_policy(pol, "yaml"), "yaml") == pol


def test_load_policy_sources(tmp_path):
    pol = Policy(rules=(Rule("zeros"),))
    assert load_policy(pol) is pol
    assert load_policy({"rules": [{"scheme": "zeros"}]}) == pol
    assert load_policy("kaiming") == get_preset("kaiming")
    gpt = load_policy("gpt2:n_layers=4")
    assert gpt == get_preset("gpt2", n_layers=4)
    assert gpt.rules[0].scheme == get_scheme("normal", std=0.02 / math.sqrt(8))
    save_policy(load_policy("xavier"), tmp_path / "x.json")
    assert load_policy(tmp_path / "x.json") == get_preset("xavier")


TRICKY = ["1e5", "null", "~", "yes", "inf", "-.inf", "0x10", "1_000", "", " ", "a: b", "- x",
          "#c", "'", '"', "\\", "\u2028", "\x85", "\x7f", "\ufeff", "é", "[a]", "{a}", "*",
          "true", "2001-01-01", "12:30"]  # fmt: skip


@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_tricky_strings_round_trip(fmt):
    for s in TRICKY:
        pol = Policy(rules=(Rule("zeros", name=s, id=s or None),), exclude=(s,), name=s)
        assert loads_policy(dumps_policy(pol, fmt), fmt) == pol, s


# -- errors --------------------------------------------------------------------------------
def err(source) -> PolicyError:
    with pytest.raises(PolicyError) as e:
        load_policy(source)
    return e.value


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"rules": [{"scheme": "kaimin_normal"}]}, "rules[0].scheme", "did you mean 'kaiming_"),
        (
            {"rules": [{"scheme": "zeros", "modul": "Linear"}]},
            "rules[0]",
            "unknown key 'modul' (did you mean 'module'?)",
        ),
        (
            {"rules": [{"scheme": "zeros"}, {"scheme": "zeros", "ndim": "two"}]},
            "rules[1].ndim",
            "expected an int or list of ints, got 'two'",
        ),
        ({"rules": [{"scheme": "zeros", "ndim": [2, "x"]}]}, "rules[0].ndim", "bad entry 'x'"),
        ({"rules": [{"scheme": "zeros", "shape": [1, -1]}]}, "rules[0].shape", "bad entry -1"),
        ({"unmatched": "ignore"}, "unmatched", "must be one of leave, default, error"),
        ({"unmatched": "default"}, "default", "required when unmatched is 'default'"),
        ({"default": "zeros"}, "default", "only used when unmatched is 'default'"),
        ({"unmatched": "default", "default": "nope"}, "default", "unknown scheme 'nope'"),
        ({"rules": [{"scheme": "zeros", "name": "re:("}]}, "rules[0].name", "bad regular expr"),
        ({"rules": [{"scheme": "zeros", "param": "re:[a"}]}, "rules[0].param", "bad regular"),
        ({"exclude": ["ok", "re:)"]}, "exclude[1]", "bad regular expression"),
        ({"rules": [{"scheme": "zeros", "module": ""}]}, "rules[0].module", "not a module type"),
        (
            {"rules": [{"scheme": "zeros", "module": ["Linear", "torch..X"]}]},
            "rules[0].module[1]",
            "not a module type",
        ),
        ({"rules": [{"scheme": "zeros", "module": 3}]}, "rules[0].module", "expected a module"),
        (
            {"rules": [{"scheme": {"name": "kaiming_normal", "mdoe": "fan_in"}}]},
            "rules[0].scheme.mdoe",
            "did you mean 'mode'?",
        ),
        (
            {"rules": [{"scheme": "normal", "params": {"sdt": 1.0}}]},
            "rules[0].params.sdt",
            "did you mean 'std'?",
        ),
        (
            {"rules": [{"scheme": "normal", "params": {"std": -1.0}}]},
            "rules[0].params.std",  # the offending key itself
            "std must be",
        ),
        ({"rules": [{"scheme": {"std": 1.0}}]}, "rules[0].scheme", "missing 'name'"),
        (
            {"rules": [{"scheme": "normal", "params": {"std": 1.0}, "block": 3}]},
            "rules[0].block",
            "non-empty string",
        ),
        ({"rules": [{"param": "weight"}]}, "rules[0]", "missing key 'scheme'"),
        ({"rules": ["zeros"]}, "rules[0]", "a rule must be a mapping"),
        ({"rules": {"scheme": "zeros"}}, "rules", "expected a list of rules"),
        ({"rule": []}, "rule", "did you mean 'rules'?"),
        ({"name": 3}, "name", "expected a string"),
        ({"rules": [{"scheme": "zeros", "name": ["a", "b"]}]}, "rules[0].name", "a pattern"),
        ({"exclude": 5}, "exclude", "expected a list of parameter name patterns"),
    ],
)
def test_bad_input_messages(data, path, message):
    e = err(data)
    assert e.path == path
    assert message in e.message
    assert str(e).startswith(f"{path}: ")


def test_errors_name_the_file(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("rules:\n  - scheme: zeros\n  - scheme: zeros\n  - scheme: kaimin_normal\n")
    e = err(p)
    assert e.file == str(p) and e.path == "rules[2].scheme"
    assert e.line == 4
    assert str(e).startswith(f"{p}, line 4: rules[2].scheme: unknown scheme 'kaimin_normal'")
    assert "known schemes: " in str(e) and "kaiming_normal" in str(e)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("p.yaml", "name: x\nrules:\n  - scheme: zeros\n   param: [\n", 4),
        ("p.toml", 'name = "x"\n\n[[rules]]\nscheme = \n', 4),
        ("p.json", '{"name": "x",\n "rules": [\n  {"scheme": "zeros",}\n ]}\n', 3),
    ],
)
def test_syntax_errors_are_one_line_with_file_and_line(tmp_path, name, text, line):
    p = tmp_path / name
    p.write_text(text)
    e = err(p)
    assert e.line == line and e.path is None and e.file == str(p)
    assert str(e).startswith(f"{p}, line {line}: invalid ")
    assert "\n" not in str(e) and "invalid " in e.message


def test_file_errors(tmp_path):
    assert "no such policy file" in str(err(tmp_path / "missing.toml"))
    (tmp_path / "p.txt").write_text("")
    assert "unsupported file extension '.txt'" in str(err(tmp_path / "p.txt"))
    assert "did you mean 'gpt2'" in str(err("gtp2"))
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "a policy must be a mapping" in str(err(tmp_path / "list.json"))


def test_preset_errors():
    e = err("gpt2")
    assert e.path == "n_layers" and "gpt2:n_layers=12" in e.message
    with pytest.raises(PolicyError, match="n_layers=12"):
        get_preset("gpt2")
    assert err("gpt2:n_layers=0").path == "n_layers"
    assert "did you mean 'n_layers'" in err("gpt2:n_layer=3").message
    assert "key=value" in err("gpt2:12").message
    assert err("kaiming:gain=2").path == "gain"
    assert err("gpt2:n_layers=2,residual=re:(").path == "residual"
    with pytest.raises(PolicyError) as e:
        get_preset("gpt2", n_layers=2, residual=["*c_proj", 3])
    assert e.value.path == "residual[1]"


def values_fn(shape, generator):
    return torch.zeros(shape)


def test_unserialisable_scheme_is_a_policy_error():
    pol = Policy(rules=(Rule("zeros"), Rule(get_scheme("custom", fn=lambda s, g: 0.0))))
    with pytest.raises(PolicyError) as e:
        dumps_policy(pol, "json")
    assert e.value.path == "rules[1].scheme" and "cannot write this scheme" in e.value.message
    ok = Policy(rules=(Rule(get_scheme("custom", fn=values_fn)),))
    back = loads_policy(dumps_policy(ok, "toml"), "toml")  # fn comes back as its import path
    assert back.rules[0].scheme.to_config() == ok.rules[0].scheme.to_config()


# -- presets -------------------------------------------------------------------------------
def test_every_preset_builds_round_trips_and_is_documented(preset_args):
    assert set(list_presets()) >= {
        "torch_default", "linear_xavier_conv_kaiming", "orthogonal_weights", "lecun", "kaiming",
        "xavier", "gpt2",
    }  # fmt: skip
    # the *_auto presets need a model: test_zoo_hf.py, test_zoo_timm.py
    assert set(preset_args) == set(list_presets()) - {"hf_auto", "timm_auto", "torchvision_auto"}
    for name, kwargs in preset_args.items():
        pol = get_preset(name, **kwargs)
        assert pol.name and pol.description and pol.unmatched == "leave"
        for fmt in ("yaml", "toml", "json"):
            assert loads_policy(dumps_policy(pol, fmt), fmt) == pol
    assert get_preset("torch_default") == get_preset("torch-default")


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4)
    )


def test_seeds_presets_on_a_cnn():
    ps = infos(cnn())
    xk = get_preset("linear-xavier-conv-kaiming")
    assert scheme_of(xk, ps["0.weight"]) == get_scheme(
        "kaiming_normal", mode="fan_out", nonlinearity="relu"
    )
    assert scheme_of(xk, ps["0.bias"]) == get_scheme("zeros")
    assert scheme_of(xk, ps["1.weight"]) == get_scheme("ones")
    assert scheme_of(xk, ps["1.bias"]) == get_scheme("zeros")
    assert scheme_of(xk, ps["4.weight"]) == get_scheme("xavier_normal")
    orth = get_preset("orthogonal_weights")
    assert scheme_of(orth, ps["0.weight"]) == get_scheme("orthogonal", gain=math.sqrt(2))
    assert math.isclose(math.sqrt(2), torch.nn.init.calculate_gain("relu"))
    assert scheme_of(orth, ps["4.weight"]) == get_scheme("orthogonal")
    assert scheme_of(orth, ps["4.bias"]) == get_scheme("zeros")
    assert orth.resolve(ps["1.weight"]).rule is None  # BatchNorm left alone
    everything = get_preset("torch-default")
    assert all(scheme_of(everything, i) == get_scheme("torch_default") for i in ps.values())


@pytest.mark.parametrize(
    ("preset", "weight"),
    [
        ("lecun", get_scheme("lecun_normal")),
        ("kaiming", get_scheme("kaiming_normal", nonlinearity="relu")),
        ("xavier", get_scheme("xavier_uniform")),
    ],
)
def test_family_presets(preset, weight):
    model = nn.ModuleDict(
        {
            "cnn": cnn(),
            "emb": nn.Embedding(10, 4, padding_idx=0),
            "ln": nn.LayerNorm(4),
            "lstm": nn.LSTM(4, 3, proj_size=2),
            "attn": nn.MultiheadAttention(8, 2),
            "prelu": nn.PReLU(),
        }
    )
    ps, pol = infos(model), get_preset(preset)
    assert scheme_of(pol, ps["cnn.0.weight"]) == weight
    assert scheme_of(pol, ps["cnn.4.weight"]) == weight
    assert scheme_of(pol, ps["attn.in_proj_weight"]) == weight
    assert scheme_of(pol, ps["attn.out_proj.weight"]) == weight
    for bias in ("cnn.0.bias", "cnn.4.bias", "attn.in_proj_bias", "lstm.bias_ih_l0"):
        assert scheme_of(pol, ps[bias]) == get_scheme("zeros")
    for norm in ("cnn.1", "ln"):
        assert scheme_of(pol, ps[f"{norm}.weight"]) == get_scheme("ones")
        assert scheme_of(pol, ps[f"{norm}.bias"]) == get_scheme("zeros")
    assert scheme_of(pol, ps["emb.weight"]) == get_scheme("torch_default")
    assert scheme_of(pol, ps["lstm.weight_ih_l0"]) == get_scheme("xavier_uniform")
    assert scheme_of(pol, ps["lstm.weight_hh_l0"]) == get_scheme("orthogonal")
    assert scheme_of(pol, ps["lstm.weight_hr_l0"]) == get_scheme("xavier_uniform")
    assert pol.resolve(ps["prelu.weight"]).rule is None


class Block(nn.Module):
    """nanoGPT naming: attn.c_attn / attn.c_proj / mlp.c_fc / mlp.c_proj."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.ModuleDict({"c_attn": nn.Linear(d, 3 * d), "c_proj": nn.Linear(d, d)})
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(d, 4 * d), "c_proj": nn.Linear(4 * d, d)})


def test_gpt2_preset():
    n = 4
    model = nn.ModuleDict(
        {
            "wte": nn.Embedding(50, 8),
            "h": nn.ModuleList([Block(8) for _ in range(2)]),
            "torch_layer": nn.TransformerEncoderLayer(8, 2, 16),
            "fc2": nn.Linear(8, 8),
        }
    )
    ps, pol = infos(model), load_policy(f"gpt2:n_layers={n}")
    small, base = get_scheme("normal", std=0.02 / math.sqrt(2 * n)), get_scheme("normal", std=0.02)
    for q in (
        "h.0.attn.c_proj.weight",
        "h.1.mlp.c_proj.weight",
        "torch_layer.self_attn.out_proj.weight",
        "torch_layer.linear2.weight",
        "fc2.weight",
    ):
        assert scheme_of(pol, ps[q]) == small, q
    for q in ("wte.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_fc.weight",
              "torch_layer.self_attn.in_proj_weight", "torch_layer.linear1.weight"):  # fmt: skip
        assert scheme_of(pol, ps[q]) == base, q
    for q in ("h.0.attn.c_proj.bias", "torch_layer.self_attn.in_proj_bias", "h.0.ln_1.bias"):
        assert scheme_of(pol, ps[q]) == get_scheme("zeros"), q
    assert scheme_of(pol, ps["torch_layer.norm1.weight"]) == get_scheme("ones")
    custom = get_preset("gpt2", n_layers=n, residual="*.c_proj", std=0.01)
    assert scheme_of(custom, ps["h.0.attn.c_proj.weight"]) == get_scheme(
        "normal", std=0.01 / math.sqrt(2 * n)
    )
    assert scheme_of(custom, ps["fc2.weight"]) == get_scheme("normal", std=0.01)


# -- random policies round-trip ------------------------------------------------------------
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
schemes = st.one_of(
    st.sampled_from(["zeros", "ones", "orthogonal", "torch_default", "xavier_uniform"]).map(
        get_scheme
    ),
    st.floats(0, 10).map(lambda s: get_scheme("normal", std=s)),
    st.tuples(
        st.floats(-math.inf, 0, exclude_max=True), st.floats(0, math.inf, exclude_min=True)
    ).map(lambda ab: get_scheme("trunc_normal", a=ab[0], b=ab[1])),
    st.tuples(st.sampled_from(["fan_in", "fan_out", "fan_avg"]), st.floats(-3, 3)).map(
        lambda x: get_scheme("scaled", base=get_scheme("kaiming_uniform", mode=x[0]), factor=x[1])
    ),
    st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True).map(
        lambda ax: get_scheme("variance_scaling", in_axis=tuple(ax), out_axis=4)
    ),
)
maybe = lambda s: st.none() | s  # noqa: E731
rules = st.builds(
    Rule,
    scheme=schemes,
    module=maybe(st.lists(st.sampled_from(["Linear", "torch.nn.Conv2d", nn.LSTM]), min_size=1)),
    name=maybe(text.filter(lambda s: not s.startswith("re:"))),
    param=maybe(st.sampled_from(["weight", "bias", "re:weight_(ih|hh)_l\\d+", "*"])),
    ndim=maybe(st.integers(0, 5) | st.lists(st.integers(0, 5), max_size=3).map(tuple)),
    shape=maybe(st.lists(st.none() | st.integers(0, 9), max_size=4).map(tuple)),
    block=maybe(st.sampled_from(LSTM_GATES)),
    id=maybe(text.filter(bool)),
)
policies = st.builds(
    Policy,
    rules=st.lists(rules, max_size=4).map(tuple),
    exclude=st.lists(text.filter(lambda s: not s.startswith("re:")), max_size=3).map(tuple),
    name=maybe(text),
    description=maybe(text),
)


@given(policies, st.sampled_from(["json", "yaml", "toml"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_policies_round_trip(pol, fmt):
    assert loads_policy(dumps_policy(pol, fmt), fmt) == pol
