"""Safe expressions of model quantities in policies (``std: "0.02 / sqrt(2 * n_layer)"``)."""

from __future__ import annotations

import ast
import json
import math
import warnings

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import initlab
from initlab.cli import main
from initlab.policy import (
    ExpressionError,
    Policy,
    PolicyError,
    Rule,
    dumps_policy,
    loads_policy,
    model_quantities,
    read_policy_file,
    save_policy,
)
from initlab.policy.expressions import MAX_LENGTH, Expression, SchemeTemplate, evaluate

GPT2 = "hf:gpt2?n_layer=2&n_embd=32&n_head=2&vocab_size=64&n_positions=16"

# -- the evaluator agrees with Python on floats ---------------------------------------------
Q = {"n_layer": 12.0, "d": 768.0, "r": 0.02, "z": 0.0, "neg": -3.0}
FUNCS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp, "abs": abs, "min": min, "max": max}

leaves = st.one_of(
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.integers(0, 1000).map(str),
    st.sampled_from(sorted(Q)),
)


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binop = st.sampled_from(["+", "-", "*", "/", "//", "%"])
    return st.one_of(
        st.tuples(children, binop, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        # integral exponents only: Python's float ** would otherwise go complex
        st.tuples(children, st.integers(-4, 4)).map(lambda t: f"({t[0]}) ** {t[1]}"),
        st.tuples(st.sampled_from(["+", "-"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["sqrt", "log", "exp", "abs"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(children, min_size=2, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


trees = st.recursive(leaves, _grow, max_leaves=10)


class _Floats(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.copy_location(ast.Constant(float(node.value)), node)


def python_value(text: str) -> float | None:
    """Python's own evaluation on floats (int literals made floats); None where it fails or
    gives no finite real number."""
    tree = ast.fix_missing_locations(_Floats().visit(ast.parse(text, mode="eval")))
    try:
        v = eval(compile(tree, "<expr>", "eval"), {"__builtins__": {}}, {**FUNCS, **Q})
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    return v if isinstance(v, float) and math.isfinite(v) else None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_random_arithmetic_agrees_with_python_on_floats(text: str) -> None:
    assume(len(text) <= MAX_LENGTH)
    expected = python_value(text)
    if expected is None:
        with pytest.raises(ExpressionError):
            evaluate(text, Q)
    else:
        assert evaluate(text, Q) == expected


FORBIDDEN = [
    "{a}.real", "{a}[0]", "{a} < {b}", "{a} == {b}", "(lambda: {a})", "'s'", "b'x'", "True",
    "None", "1j", "...", "[{a}]", "({a}, {b})", "{{{a}: 1}}", "{{{a}}}", "{a} if {b} else {a}",
    "{a} and {b}", "not {a}", "~{a}", "{a} << 1", "{a} & {b}", "{a} | {b}", "{a} ^ {b}",
    "{a} @ {b}", "f'{{{a}}}'", "(y := {a})", "__import__('os')", "eval('1')", "sqrt",
    "sqrt(x={a})", "max(*[{a}, {b}])", "math.sqrt({a})", "({a}).__class__", "[i for i in [1]]",
    "pow({a}, 2)", "sqrt({a}, {b})", "min({a})", "exp()", "sqrt.__call__({a})",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FORBIDDEN), trees, trees, trees, st.integers(0, 2))
def test_random_forbidden_constructs_are_always_refused(
    bad: str, a: str, b: str, other: str, where: int
) -> None:
    snippet = bad.format(a=a, b=b)
    text = [f"({snippet})", f"{other} + ({snippet})", f"max({other}, ({snippet}) * 2)"][where]
    with pytest.raises(ExpressionError):
        Expression(text)


def test_huge_powers_and_long_expressions_are_refused_at_once() -> None:
    with pytest.raises(ExpressionError, match=r"exponent .* too large"):
        evaluate("9**9**9", {})
    with pytest.raises(ExpressionError, match=r"exponent .* too large"):
        evaluate("2 ** n", {"n": 1e6})
    with pytest.raises(ExpressionError, match=rf"too long .*at most {MAX_LENGTH}"):
        Expression("1 + " * 100 + "1")
    assert evaluate("2 ** -0.5 * sqrt(2)", {}) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 / (n_layer - n_layer)", "division by zero"),
        ("n_layer % 0", "division by zero"),
        ("log(0 * n_layer)", "math error"),
        ("sqrt(-n_layer)", "math error"),
        ("exp(1000 * n_layer)", "math error"),
        ("1e308 * 10 * n_layer", "not a finite real number"),
        ("(-n_layer) ** 0.5", "not a finite real number|math error"),
    ],
)
def test_evaluation_errors_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(ExpressionError, match=match):
        evaluate(text, {"n_layer": 2})


# -- in policies -----------------------------------------------------------------------------
GPT2_FILE = """\
name: gpt2-by-hand
rules:
  - scheme: {name: normal, std: "0.02 / sqrt(2 * n_layer)"}
    name: "*c_proj"
    param: weight
  - scheme: {name: normal, std: initializer_range}
    module: [torch.nn.Linear, Conv1D, torch.nn.Embedding]
    param: weight
  - scheme: zeros
    module: [torch.nn.Linear, Conv1D]
    param: bias
  - {scheme: ones, role: norm_scale}
  - {scheme: zeros, role: norm_shift}
"""


def test_a_gpt2_policy_file_gives_the_gpt2_preset_values_bit_for_bit(tmp_path):
    path = tmp_path / "gpt2.yaml"
    path.write_text(GPT2_FILE)
    a, b = initlab.build_model(GPT2), initlab.build_model(GPT2)
    report = initlab.initialize(a, path, seed=7, strict=True)
    initlab.initialize(b, "gpt2", seed=7, strict=True)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    row = report["transformer.h.1.mlp.c_proj.weight"]
    assert row.scheme.std == 0.02 / math.sqrt(2 * 2)
    assert row.expressions == (("rule[0]", "std", "0.02 / sqrt(2 * n_layer)"),)
    assert "std=0.02 / sqrt(2 * n_layer) = 0.01)" in str(report)
    assert row.to_dict()["expressions"] == [
        {"rule": "rule[0]", "param": "std", "text": "0.02 / sqrt(2 * n_layer)"}
    ]
    # the report keeps the policy as written; meta + materialize reads the same quantities
    assert report.policy == read_policy_file(path)
    with initlab.meta_build():
        m = initlab.build_model(GPT2)
    initlab.materialize(m, path, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(m.parameters(), a.parameters(), strict=True))


@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_expressions_round_trip_as_text(fmt, tmp_path):
    pol = Policy(
        rules=(
            Rule({"name": "normal", "std": "0.02 / sqrt(2 * n_layer)"}, name="*c_proj"),
            Rule({"name": "trunc_normal", "std": "min(0.02, 1 / sqrt(width))", "a": -0.04}),
            Rule({"name": "kaiming_normal", "mode": "fan_out"}),
        ),
        unmatched="default",
        default={"name": "uniform", "a": "-1 / sqrt(width)", "b": "1 / sqrt(width)"},
    )
    text = dumps_policy(pol, fmt)
    assert "0.02 / sqrt(2 * n_layer)" in text and "-1 / sqrt(width)" in text
    assert loads_policy(text, fmt) == pol
    assert read_policy_file(save_policy(pol, tmp_path / f"p.{fmt}")) == pol
    assert pol.to_dict()["rules"][0]["scheme"] == {
        "name": "normal",
        "std": "0.02 / sqrt(2 * n_layer)",
    }
    bound = pol.bind({"n_layer": 2, "width": 64})
    assert bound[pol.default] == initlab.get_scheme("uniform", a=-0.125, b=0.125)
    assert bound[pol.rules[1].scheme].std == 0.02 and bound[pol.rules[1].scheme].a == -0.04


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        (
            "yaml",
            'rules:\n  - param: weight\n    scheme: {name: normal, std: "0.02 / sqrt(2"}\n',
            3,
        ),
        ("json", '{"rules": [\n {"scheme":\n  {"name": "normal",\n   "std": "(x"}}]}', 4),
        ("toml", '[[rules]]\nparam = "weight"\nscheme = {name = "normal", std = "1 +"}\n', 3),
    ],
)
def test_bad_syntax_names_the_file_line_and_key(fmt, text, line, tmp_path):
    path = tmp_path / f"p.{fmt}"
    path.write_text(text)
    with pytest.raises(PolicyError, match="invalid syntax") as e:
        read_policy_file(path)
    assert (e.value.file, e.value.line, e.value.path) == (str(path), line, "rules[0].scheme.std")
    assert str(e.value).startswith(f"{path}, line {line}: rules[0].scheme.std: expression")
    assert "\n" not in str(e.value)


def test_a_forbidden_construct_names_the_file_line_and_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "rules:\n  - scheme: zeros\n  - scheme: normal\n"
        "    params: {std: \"__import__('os').getcwd()\"}\n"
    )
    with pytest.raises(PolicyError, match="not allowed") as e:
        read_policy_file(path)
    assert (e.value.line, e.value.path) == (4, "rules[1].params.std")


def test_an_unknown_name_lists_the_models_quantities_closest_first():
    model = initlab.build_model(GPT2)
    pol = Policy([Rule({"name": "normal", "std": "0.02 / sqrt(2 * n_layers)"}, param="weight")])
    with pytest.raises(PolicyError) as e:
        initlab.plan(model, pol)
    msg = str(e.value)
    assert msg.startswith("rules[0].scheme.std: expression '0.02 / sqrt(2 * n_layers)': unknown")
    assert "(did you mean 'n_layer'?); this model's quantities are: n_layer, " in msg
    assert set(model_quantities(model)) <= set(msg.split("are: ")[1].split(", "))


def test_errors_when_planned_leave_the_model_untouched(assert_unchanged, snapshot):
    model = nn.Sequential(nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)]))
    before = snapshot(model)
    cases = {
        "1 / (n_layer - 2)": r"rules\[0\]\.scheme\.std: .*division by zero",
        "-0.1 * n_layer": r"rules\[0\].scheme: normal: std must be .* \(with std = -0.2\)",
        "n_params": None,  # fine: 24 parameters
    }
    for text, match in cases.items():
        pol = Policy([Rule({"name": "normal", "std": text}, param="weight")])
        if match is None:
            assert initlab.plan(model, pol)["0.0.weight"].scheme.std == 24.0
            continue
        with pytest.raises(PolicyError, match=match):
            initlab.initialize(model, pol)
        assert_unchanged(model, before)


def test_a_block_override_shows_its_expression():
    pol = Policy(
        [
            Rule({"name": "constant", "val": "1 + n_layer"}, param="bias_*", block="f"),
            Rule("zeros", param="bias_*"),
        ]
    )
    report = initlab.plan(nn.LSTM(2, 3), pol)
    assert "block f: constant(val=1 + n_layer = 1) (override, rule[0])" in str(report)


def test_expressions_need_a_model_and_a_float_parameter():
    with pytest.raises(ValueError, match="put the scheme in a policy rule"):
        initlab.get_scheme({"name": "normal", "std": "0.02 / sqrt(n_layer)"})
    with pytest.raises(ValueError, match="finite number"):  # numbers as text are not formulas
        initlab.get_scheme({"name": "normal", "std": "-1"})
    template = Rule({"name": "normal", "std": "0.02 * n_layer"}).scheme
    assert isinstance(template, SchemeTemplate)
    with pytest.raises(ExpressionError, match="planned against a model"):
        template(torch.empty(2, 2))
    with pytest.raises(PolicyError, match="only allowed in a float parameter") as e:
        Rule({"name": "dirac", "groups": "n_layer"})
    assert e.value.path == "scheme.groups"
    # the other parameters are checked at once, not when planned
    with pytest.raises(PolicyError, match="mode 'bogus' is not supported") as e:
        Rule({"name": "kaiming_normal", "mode": "bogus", "a": "n_layer"})
    assert e.value.path == "scheme.mode"
    assert Rule({"name": "uniform", "a": "-1 / width", "b": 0.5}).scheme.expressions.keys() == {"a"}
    assert Rule({"name": "trunc_normal", "b": "inf"}).scheme.b == math.inf  # JSON's infinity


def test_the_cli_plan_shows_the_expression_and_its_value(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GPT2_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(main, ["plan", GPT2, "-p", str(path), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)["parameters"]}
    row = rows["transformer.h.1.attn.c_proj.weight"]
    assert row["scheme"]["std"] == 0.01 and row["expressions"][0]["text"] == (
        "0.02 / sqrt(2 * n_layer)"
    )
    res = CliRunner().invoke(main, ["plan", GPT2, "-p", str(path)])
    assert res.exit_code == 0 and "sqrt(2 * n_layer) = 0.01" in res.output
    path.write_text(GPT2_FILE.replace("n_layer)", "depth)"))
    res = CliRunner().invoke(main, ["plan", GPT2, "-p", str(path)])
    assert res.exit_code == 2
    assert res.output.startswith("initlab: error: rules[0].scheme.std: expression")
    assert "unknown name 'depth'" in res.output and res.output.count("\n") == 1
