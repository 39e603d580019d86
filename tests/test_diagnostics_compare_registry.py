"""``compare_schemes``/``apply_scheme_`` and ``diagnose`` on every weight-bearing layer the
registry knows: GPT-2's Conv1D filled with registry fans (q/k/v per block), the tied readout
filled once, skips in one note and one warning, a tied parameter measured once."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import initlab
from initlab.diagnostics import apply_scheme_, compare_schemes, diagnose
from initlab.schemes import get_scheme
from zoo_hf import ZOO

transformers = pytest.importorskip("transformers", reason="the GPT-2 cases need transformers")


def gpt2() -> nn.Module:
    return initlab.build_model(ZOO["gpt2"][0]).eval()


def ids(batch: int = 16) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.randint(0, 128, (batch, 16), generator=torch.Generator().manual_seed(1))
    }


def within_3_se(t: torch.Tensor, std: float) -> bool:
    """Sample std of a N(0, std²) draw within 3 standard errors (SE of the std: std/sqrt(2n))."""
    return abs(float(t.detach().double().std()) - std) < 3 * std / math.sqrt(2 * t.numel())


def test_apply_scheme_fills_every_conv1d_with_its_registry_fans_and_not_the_embeddings():
    model = gpt2()
    wte, wpe = model.transformer.wte.weight.clone(), model.transformer.wpe.weight.clone()
    with pytest.warns(UserWarning) as record:
        apply_scheme_(model, "xavier_normal", torch.Generator().manual_seed(0))
    assert len(record) == 1 and "lm_head" in str(record[0].message)
    for i in range(2):
        h = model.transformer.h[i]
        # Conv1D [in, out]: c_fc 64 -> 256, c_proj 256 -> 64; xavier std sqrt(2 / (in + out))
        for conv, (fi, fo) in ((h.mlp.c_fc, (64, 256)), (h.mlp.c_proj, (256, 64)),
                               (h.attn.c_proj, (64, 64))):  # fmt: skip
            assert within_3_se(conv.weight, math.sqrt(2 / (fi + fo))), conv
            assert conv.bias.abs().sum() == 0
        # c_attn [64, 192]: each of q, k, v is 64 -> 64 (0.125), not the whole 64 -> 192 (0.088)
        for block in h.attn.c_attn.weight.split(64, dim=1):
            assert within_3_se(block, math.sqrt(2 / 128))
    assert torch.equal(model.transformer.wte.weight, wte)  # tied to lm_head: left as built
    assert torch.equal(model.transformer.wpe.weight, wpe)


def test_a_tied_weight_is_filled_once_by_its_first_owner():
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    b.weight = a.weight
    with pytest.warns(UserWarning, match=r"Linear x1 \(2\): weight tied to 0.weight"):
        apply_scheme_(nn.Sequential(a, nn.ReLU(), b), "kaiming_normal",
                      torch.Generator().manual_seed(0))  # fmt: skip
    # one fill, from the generator's first draws (a second fill would have drawn again)
    expected = get_scheme("kaiming_normal")(
        torch.empty(8, 8), None, torch.Generator().manual_seed(0)
    )
    assert torch.equal(a.weight, expected)


def test_compare_schemes_warns_once_for_all_schemes_and_keeps_the_note():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cmp = compare_schemes(gpt2(), {"he": "kaiming_normal", "x": "xavier_uniform",
                                       "lsuv": "lsuv"}, ids(), bins=0,
                              singular_values=False)  # fmt: skip
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and messages == cmp.notes
    assert messages[0].startswith(
        "compare_schemes left 1 layer(s) as they were: Linear x1 (lm_head)"
    )
    assert cmp.to_dict()["notes"] == cmp.notes
    layers = cmp.layer_labels()
    assert (
        len(layers) == 9 and sum("c_attn" in n or "c_proj" in n or "c_fc" in n for n in layers) == 8
    )
    he = {r["layer"]: r["output_std"] for r in cmp.rows() if r["scheme"] == "he"}
    # He on c_attn (fan_in 64) after the unit-variance ln_1: std sqrt(2) at init, before: 0.02
    assert he["transformer.h.0.attn.c_attn"] == pytest.approx(math.sqrt(2), rel=0.05)


def test_diagnose_counts_a_tied_parameter_once_and_splits_packed_blocks():
    d = diagnose(gpt2(), ids())
    first = {r.label: r for r in d.records if r.call == 0}
    weights = [r.label for r in d.weight_records()]
    assert len(weights) == 9 and weights[-1] == "lm_head"
    assert not first["transformer.wte"].has_weight  # a lookup: not a pre-activation
    wte = first["transformer.wte"].weights["weight"]
    head = first["lm_head"].weights["weight"]
    assert wte.tied_to is None and wte.sv is not None and wte.grad_std is not None
    assert head.tied_to == "transformer.wte.weight" and head.sv is None and head.grad_std is None
    attn = first["transformer.h.0.attn.c_attn"].weights["weight"]
    assert list(attn.blocks) == ["q", "k", "v"] and attn.to_dict()["tied_to"] is None
