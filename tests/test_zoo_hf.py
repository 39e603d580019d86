"""The Hugging Face reference zoo (tests/zoo_hf.py): on every model, registry-backed fans equal
a hand-written table; the family preset matches transformers' own init per parameter group; a
meta build + materialize equals an eager build + the same policy bit for bit, buffers included;
and the checkpoint loads with ``from_pretrained``."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="the HF zoo needs transformers (pip install 'initlab[hf]')"
)

import initlab  # noqa: E402
from zoo_hf import ZOO, expected_fans  # noqa: E402

NAMES = sorted(ZOO)
POLICY = "hf-auto"
SIGMAS = 3.0  # the tolerance on a std, in sampling standard errors


def build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return initlab.build_model(ZOO[name][0])


def meta(name: str) -> torch.nn.Module:
    with initlab.meta_build():
        return initlab.build_model(ZOO[name][0])


def eager_buffers(name: str) -> dict[str, torch.Tensor]:
    """An eager build's buffers, for the ones a meta build leaves on meta (rotary inv_freq,
    BERT's position ids) until meta builds keep buffers real (realbuild's change)."""
    return dict(build(name).named_buffers())


@pytest.mark.parametrize("name", NAMES)
def test_fans_are_registry_backed_and_match_the_table(name):
    model = build(name)
    for qualname, _ in model.named_parameters():
        f = initlab.compute_fans(model, qualname)
        assert f.rule != "shape-fallback", f"{name}: {qualname} has no registry entry"
        assert (f.fan_in, f.fan_out, tuple(b.name for b in f.blocks)) == expected_fans(
            name, qualname
        ), qualname


def test_gpt2_c_attn_whole_and_block_fans():
    f = initlab.compute_fans(build("gpt2"), "transformer.h.0.attn.c_attn.weight")
    assert (f.torch_fan_in, f.torch_fan_out) == (192, 64)  # torch reads [in, out] backwards
    assert [(b.start, b.stop, b.dim) for b in f.blocks] == [(0, 64, 1), (64, 128, 1), (128, 192, 1)]


def groups(model: torch.nn.Module, name: str) -> dict[str, list[str]]:
    """Rule id -> the parameters it covers (tied names once), from the family preset's plan."""
    out: dict[str, list[str]] = defaultdict(list)
    for row in initlab.plan(model, POLICY, strict=True).rows:
        out[row.rule_id].append(row.qualname)
    return out


def z_std(a: torch.Tensor, b: torch.Tensor) -> float:
    """|std(a) - std(b)| in standard errors of the difference (normal samples: se = s/sqrt(2n))."""
    sa, sb = a.double().std().item(), b.double().std().item()
    se = math.sqrt(sa**2 / (2 * a.numel()) + sb**2 / (2 * b.numel()))
    return abs(sa - sb) / se


def z_mean(a: torch.Tensor, b: torch.Tensor) -> float:
    se = math.sqrt(a.double().var().item() / a.numel() + b.double().var().item() / b.numel())
    return abs(a.double().mean().item() - b.double().mean().item()) / se


def compare_with_library(name: str) -> tuple[int, float, list[str]]:
    """(parameters covered, max std error in standard errors, rule ids), asserting each group."""
    lib = dict(build(name, seed=1).named_parameters())  # transformers' own _init_weights
    ours_model = build(name, seed=2)
    initlab.initialize(ours_model, POLICY, seed=0)
    ours = dict(ours_model.named_parameters())
    worst, covered = 0.0, 0
    by_rule = groups(ours_model, name)
    for rule, names in by_rule.items():
        covered += len(names)
        a = torch.cat([lib[n].detach().flatten() for n in names])
        b = torch.cat([ours[n].detach().flatten() for n in names])
        if a.std() == 0:  # ones, zeros, constants: exact
            assert torch.equal(a, b), f"{name}/{rule}: constant group differs"
            continue
        for n in names:  # zero rows (padding) exact
            zero_rows = (lib[n].detach().reshape(lib[n].shape[0], -1) == 0).all(1)
            if zero_rows.any() and lib[n].dim() == 2:
                assert (ours[n].detach()[zero_rows] == 0).all(), f"{name}/{n}: padding row"
        z = z_std(a, b)
        assert z < SIGMAS, f"{name}/{rule}: std {b.std():.5f} vs library {a.std():.5f} ({z:.1f} se)"
        assert z_mean(a, b) < SIGMAS, f"{name}/{rule}: means differ"
        worst = max(worst, z)
    return covered, worst, sorted(by_rule)


@pytest.mark.parametrize("name", NAMES)
def test_family_preset_matches_the_library_init(name):
    covered, worst, _ = compare_with_library(name)
    assert covered == len({id(p) for p in build(name).parameters()})
    assert worst < SIGMAS


@pytest.mark.parametrize("name", NAMES)
def test_hf_auto_picks_the_family(name):
    family = {"qwen2": "llama", "deit": "vit"}.get(name, name)
    assert initlab.plan(build(name), POLICY).policy.name == family


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.state_dict(keep_vars=True).items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), f"{what}: {k} differs"


def unknown_buffers(model: torch.nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The eager values of the buffers a meta build left on meta."""
    values = eager_buffers(name)
    return {n: values[n] for n, b in model.named_buffers() if b.is_meta}


@pytest.mark.parametrize("name", NAMES)
def test_materialize_equals_eager_plus_policy(name):
    eager = build(name)
    initlab.initialize(eager, POLICY, seed=7)
    model = meta(name)
    initlab.materialize(model, POLICY, seed=7, buffers=unknown_buffers(model, name))
    assert_same(state(model), state(eager), name)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_loads_with_from_pretrained(name, tmp_path):
    eager = build(name)
    initlab.initialize(eager, POLICY, seed=3)
    model = meta(name)
    out = tmp_path / "ckpt"
    initlab.write_checkpoint(
        model, POLICY, 3, out, progress=False, buffers=unknown_buffers(model, name)
    )
    assert (out / "config.json").is_file()
    auto = getattr(transformers, ZOO[name][1])
    loaded = auto.from_pretrained(out)
    assert type(loaded) is type(eager)
    assert_same(state(loaded), state(eager), name)


@pytest.mark.parametrize("name", NAMES)
def test_torch_default_covers_every_parameter(name):
    model = build(name)
    report = initlab.initialize(model, "torch-default", seed=0, strict=True)
    assert len(report.rows) == len({id(p) for p in model.parameters()})
