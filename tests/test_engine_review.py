"""Review fixes of the engine: partial block coverage, pre-write validation, ties, buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab import Policy, Rule
from initlab.apply import regenerate
from initlab.checkpoint import CheckpointError, write_checkpoint
from initlab.materialize import MaterializeError
from initlab.plan import UnmatchedParametersError


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- 1. partial block coverage -------------------------------------------------------------------
FORGET_ONLY = Policy(rules=(
    Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
    Rule("zeros", module="LSTM", param="weight_*"),
))  # fmt: skip


def test_partial_block_coverage_is_reported_and_strict_refuses() -> None:
    lstm = nn.LSTM(4, 3)
    report = initlab.plan(lstm, FORGET_ONLY)
    row = report["bias_ih_l0"]
    assert row.status == "partial"
    assert report.unmatched == ["bias_ih_l0", "bias_hh_l0"]
    assert report["weight_ih_l0"].status == "planned"
    before = _state(lstm)
    with pytest.raises(UnmatchedParametersError, match=r"bias_ih_l0 \(blocks i, g, o"):
        initlab.initialize(lstm, FORGET_ONLY, strict=True)
    _assert_same_state(_state(lstm), before)
    error_pol = Policy(rules=FORGET_ONLY.rules, unmatched="error")
    with pytest.raises(UnmatchedParametersError):
        initlab.plan(lstm, error_pol)


def test_partial_rows_fill_only_covered_blocks_in_place() -> None:
    lstm = nn.LSTM(4, 3)
    before = _state(lstm)
    report = initlab.initialize(lstm, FORGET_ONLY)
    assert report["bias_ih_l0"].status == "partial"
    b = lstm.bias_ih_l0.detach()
    assert torch.equal(b[3:6], torch.ones(3))  # f block
    assert torch.equal(b[:3], before["bias_ih_l0"][:3])
    assert torch.equal(b[6:], before["bias_ih_l0"][6:])


def test_partial_rows_refused_by_materialize_checkpoint_and_regenerate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        lstm = nn.LSTM(4, 3)
    with pytest.raises(MaterializeError, match=r"bias_ih_l0: block\(s\) i, g, o"):
        initlab.materialize(lstm, FORGET_ONLY)
    assert all(p.is_meta for p in lstm.parameters())
    with pytest.raises(CheckpointError, match=r"bias_hh_l0: block\(s\) i, g, o"):
        write_checkpoint(lstm, FORGET_ONLY, 0, tmp_path / "ck", progress=False)
    assert not (tmp_path / "ck").exists()
    row = initlab.plan(lstm, FORGET_ONLY)["bias_ih_l0"]
    with pytest.raises(ValueError, match=r"block\(s\) i, g, o have no rule"):
        regenerate(row)


# -- 2. validation against the real parameters before any write --------------------------------
def _two_linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))


TORCH_TRUNC = Policy(rules=(
    Rule({"name": "trunc_normal", "method": "torch"}, name="1", param="weight", id="tn"),
    Rule("normal", id="rest"),
))  # fmt: skip


def test_source_check_runs_before_any_write(monkeypatch: pytest.MonkeyPatch) -> None:
    scheme = TORCH_TRUNC.rules[0].scheme
    calls: list[str] = []

    def check_source(self, kind: str) -> None:  # type: ignore[no-untyped-def]
        calls.append(kind)
        if kind == "keyed" and self.method == "torch":
            raise ValueError("trunc_normal: method='torch' needs rng='torch'")

    monkeypatch.setattr(type(scheme), "check_source", check_source, raising=False)
    model = _two_linear()
    before = _state(model)
    with pytest.raises(ValueError, match=r"'1.weight' \(rule tn\).*method='torch'"):
        initlab.initialize(model, TORCH_TRUNC)
    _assert_same_state(_state(model), before)
    assert calls == ["keyed"]
    initlab.initialize(model, TORCH_TRUNC, rng="torch")  # fine with torch's RNG
    assert calls[-1] == "torch"


def _trunc_has_check() -> bool:
    cls = type(TORCH_TRUNC.rules[0].scheme)
    own = getattr(cls, "check_source", None)
    return own is not None and own is not getattr(initlab.schemes.Scheme, "check_source", None)


@pytest.mark.skipif(not _trunc_has_check(), reason="trunc_normal.check_source not there yet")
def test_trunc_normal_torch_under_keyed_raises_before_writing() -> None:
    model = _two_linear()
    before = _state(model)
    with pytest.raises(ValueError, match=r"1\.weight"):
        initlab.initialize(model, TORCH_TRUNC)
    _assert_same_state(_state(model), before)


class IntParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.counts = nn.Parameter(torch.arange(6).reshape(2, 3), requires_grad=False)


def test_integer_parameter_with_random_scheme_raises_before_writing() -> None:
    torch.manual_seed(0)
    model = IntParam()
    before = _state(model)
    with pytest.raises(TypeError, match=r"'counts' \(rule rule\[0\], scheme normal\).*int64"):
        initlab.initialize(model, Policy(rules=(Rule("normal"),)))
    _assert_same_state(_state(model), before)
    # a deterministic scheme may fill it
    initlab.initialize(model, Policy(rules=(Rule("zeros"),)))
    assert torch.equal(model.counts, torch.zeros(2, 3, dtype=torch.int64))


def test_fill_errors_name_parameter_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    pol = Policy(rules=(Rule("normal", param="bias", id="b"), Rule("zeros", id="w")))
    scheme = pol.rules[0].scheme

    def boom(self, *a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaput")

    monkeypatch.setattr(type(scheme), "__call__", boom)
    with pytest.raises(RuntimeError, match=r"parameter '0.bias' \(rule b\): kaput") as ei:
        initlab.initialize(_two_linear(), pol)
    assert isinstance(ei.value.__cause__, RuntimeError)


# -- 3. as_apply_fn with tied parameters --------------------------------------------------------
class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.mid = nn.Linear(6, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight


@pytest.mark.parametrize("policy", ["kaiming", "gpt2:n_layers=1"])
def test_as_apply_fn_fills_tied_parameters_once(policy: str) -> None:
    a, b = Tied(), Tied()
    initlab.initialize(a, policy, 3)
    b.apply(initlab.as_apply_fn(policy, 3, root=b))
    _assert_same_state(_state(b), _state(a))
    assert b.head.weight is b.embed.weight


# -- 4. aliases in plan: exclusion by alias, same-module aliases ----------------------------------
def test_excluding_a_tied_parameter_by_its_alias() -> None:
    m = Tied()
    report = initlab.plan(m, "kaiming", exclude=["head.weight"])
    assert report["embed.weight"].status == "excluded"
    pol = Policy(rules=(Rule("normal"),), exclude=("head.*",))
    assert initlab.plan(m, pol)["embed.weight"].status == "excluded"
    before = m.embed.weight.detach().clone()
    initlab.initialize(m, "kaiming", exclude=["head.weight"])
    assert torch.equal(m.embed.weight, before)


class SameModuleAlias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.lin.w_alias = self.lin.weight


def test_same_module_alias_is_recorded() -> None:
    m = SameModuleAlias()
    report = initlab.plan(m, "kaiming")
    assert [r.qualname for r in report] == ["lin.weight", "lin.bias"]
    assert report["lin.weight"].aliases == ("lin.w_alias",)
    assert report["lin.w_alias"].qualname == "lin.weight"
    assert initlab.plan(m, "kaiming", exclude=["lin.w_alias"])["lin.weight"].status == "excluded"


# -- 5. buffer initialisers checked before anything is allocated ---------------------------------
class WithTable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("pos", torch.arange(6.0))


def _meta_table() -> nn.Module:
    with torch.device("meta"):
        return WithTable()


def _all_meta(m: nn.Module) -> bool:
    return all(t.is_meta for t in [*m.parameters(), *m.buffers()])


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("zeros", r"buffer 'pos': initialiser must be a number, a tensor or a callable, got str"),
        (torch.ones(4), r"buffer 'pos': .*shape \(4,\), which does not broadcast .* \(6,\)"),
        (torch.ones(2, 6), r"buffer 'pos': .*shape \(2, 6\)"),
    ],
)
def test_bad_buffer_initialisers_raise_before_allocation(init: object, message: str) -> None:
    m = _meta_table()
    with pytest.raises(MaterializeError, match=message):
        initlab.materialize(m, "kaiming", buffers={"pos": init})  # type: ignore[dict-item]
    assert _all_meta(m)


def test_failing_buffer_callable_is_named_and_leaves_model_on_meta() -> None:
    def bad(t: torch.Tensor) -> None:
        raise KeyError("oops")

    m = _meta_table()
    with pytest.raises(MaterializeError, match=r"buffer 'pos': its initialiser .*oops") as ei:
        initlab.materialize(m, "kaiming", buffers={"pos": bad})
    assert isinstance(ei.value.__cause__, KeyError)
    assert _all_meta(m)
    initlab.materialize(m, "kaiming", buffers={"pos": torch.tensor(2.0)})  # broadcasts
    assert torch.equal(m.pos, torch.full((6,), 2.0))


# -- 6. torch_default zeroes MultiheadAttention's out_proj.bias under initialize ---------------
def test_torch_default_zeroes_mha_out_proj_bias_in_initialize() -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    with torch.no_grad():
        layer.self_attn.out_proj.bias.fill_(5.0)
    report = initlab.initialize(layer, "torch-default")
    assert torch.equal(layer.self_attn.out_proj.bias, torch.zeros(8))
    assert report["self_attn.out_proj.bias"].target_std == 0.0
    assert report["self_attn.out_proj.weight"].target_std > 0  # the Linear's draw


@pytest.mark.parametrize("kw", [{}, {"add_bias_kv": True}, {"kdim": 4, "vdim": 6}], ids=str)
def test_fresh_mha_equals_torch_default_with_torch_rng(kw: dict) -> None:  # type: ignore[type-arg]
    seed = 11
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(8, 2, **kw)
    m = nn.MultiheadAttention(8, 2, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(3.0)
    # the constructor first builds out_proj (a Linear draws weight, then bias), then
    # _reset_parameters draws the projections and bias_k/v: replay the same RNG positions
    torch.manual_seed(seed)
    nn.Linear(8, 8)
    initlab.initialize(m, "torch-default", rng="torch", exclude=["out_proj.*"])
    torch.manual_seed(seed)
    own = [n for n, _ in m.named_parameters() if not n.startswith("out_proj.")]
    initlab.initialize(m, "torch-default", rng="torch", exclude=own)
    _assert_same_state(_state(m), _state(ref))
    assert not m.out_proj.bias.any()


# -- 7. regenerate: int indices drop their dimension on both paths --------------------------------
def test_regenerate_int_index_drops_the_dim_on_both_paths() -> None:
    lstm = nn.LSTM(4, 3)
    pol = Policy(rules=(
        Rule({"name": "constant", "val": 1.0}, module="LSTM", param="bias_*", block="f"),
        Rule("normal"),
    ))  # fmt: skip
    report = initlab.plan(lstm, pol)
    plain, blocked = report["weight_ih_l0"], report["bias_ih_l0"]
    assert blocked.block_overrides and not plain.block_overrides
    full_w, full_b = regenerate(plain), regenerate(blocked)
    assert regenerate(plain, (2,)).shape == (4,)
    assert torch.equal(regenerate(plain, (2,)), full_w[2])
    assert torch.equal(regenerate(plain, (slice(1, 3), -1)), full_w[1:3, -1])
    assert torch.equal(regenerate(plain, (slice(1, 3),)), full_w[1:3])
    assert regenerate(blocked, (4,)).shape == ()
    assert torch.equal(regenerate(blocked, (4,)), full_b[4])
    assert torch.equal(regenerate(blocked, (slice(2, 7),)), full_b[2:7])


# -- 8. policy files: -0.0 survives, parameter value errors carry their path ----------------------
@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_negative_zero_constant_survives_file_round_trip(fmt: str) -> None:
    from initlab.policy.files import dumps_policy, loads_policy

    pol = Policy(rules=(Rule({"name": "constant", "val": -0.0}),))
    back = loads_policy(dumps_policy(pol, fmt), fmt)
    val = back.rules[0].scheme.params()["val"]
    assert val == 0.0 and str(val) == "-0.0"
    plain = loads_policy(dumps_policy(Policy(rules=(Rule("zeros"),)), fmt), fmt)
    assert plain.rules[0].scheme.name == "zeros"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"rules": [{"scheme": "zeros"}, {"scheme": "normal", "params": {"std": "x"}}]},
         "rules[1].params.std"),
        ({"rules": [{"scheme": {"name": "normal", "std": -1}}]}, "rules[0].scheme.std"),
        ({"rules": [{"scheme": {"name": "kaiming_normal", "mode": "x"}}]},
         "rules[0].scheme.mode"),
        ({"unmatched": "default", "default": {"name": "normal", "std": -1}}, "default.std"),
        # no single field to blame: the scheme itself
        ({"rules": [{"scheme": {"name": "trunc_normal", "a": 3, "b": 1}}]}, "rules[0].scheme"),
    ],
)  # fmt: skip
def test_scheme_value_errors_carry_the_key_path(data: dict, path: str) -> None:  # type: ignore[type-arg]
    from initlab.policy import PolicyError, load_policy

    with pytest.raises(PolicyError) as ei:
        load_policy(data)
    assert ei.value.path == path
