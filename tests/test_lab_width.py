"""Model families over width, and the stdlib text the language-model tasks read."""

from __future__ import annotations

import sysconfig

import pytest
import torch

from initlab.lab.data import DatasetError
from initlab.lab.data.text import load_stdlib_text, text_batch
from initlab.lab.width import (
    DEFAULT_FAMILIES,
    WidthError,
    build_member,
    family_template,
    parse_widths,
    prepare,
)


def test_family_templates():
    assert family_template("mlp") == "mlp:widths={width}-{width}"
    assert family_template("HF:GPT2") == DEFAULT_FAMILIES["hf:gpt2"]
    assert family_template("resmlp:depth=2", "width") == "resmlp:depth=2,width={width}"
    assert family_template("resmlp", "width") == "resmlp:width={width}"
    assert family_template("hf:llama", "hidden_size") == "hf:llama?hidden_size={width}"
    assert family_template("deep:width={width}") == "deep:width={width}"
    with pytest.raises(WidthError, match=r"has no width: write \{width\} where it goes"):
        family_template("deep:depth=3")
    with pytest.raises(WidthError, match="drop --width-field"):
        family_template("deep:width={width}", "width")


def test_parse_widths():
    assert parse_widths("128,64, 256") == [64, 128, 256]
    assert parse_widths([8, 4]) == [4, 8]
    for bad, msg in [("64,x", "integers"), ("0,64", "positive"), ("64", "at least two"),
                     ("64,64", "at least two")]:  # fmt: skip
        with pytest.raises(WidthError, match=msg):
            parse_widths(bad)


def test_members_are_seeded_and_the_gpt2_family_scales_its_width():
    a = build_member("mlp:widths={width}-{width}", 16, seed=3)
    b = build_member("mlp:widths={width}-{width}", 16, seed=3)
    assert torch.equal(a.fc2.weight, b.fc2.weight) and a.fc2.weight.shape == (16, 16)
    gpt = build_member(DEFAULT_FAMILIES["hf:gpt2"], 32, meta=True)
    assert gpt.transformer.wte.weight.shape == (256, 32) and gpt.transformer.wte.weight.is_meta
    assert gpt.lm_head.weight is not gpt.transformer.wte.weight  # untied: a readout of its own
    with pytest.raises(ValueError, match="width must be a positive integer"):  # the zoo's check
        build_member("deep:depth=2,width={width}", 0)


def test_sp_keeps_the_model_and_one_learning_rate():
    model = build_member("mlp:widths={width}-{width}", 8, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prep = prepare(model, "sp", lr=0.5)
    assert [g["lr"] for g in prep.param_groups] == [0.5]
    assert set(prep.lr_mults.values()) == {1.0} and prep.readouts == {} and prep.handle is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(WidthError, match="parametrisation must be one of sp, mup"):
        prepare(model, "ntk", lr=0.1)
    with pytest.raises(WidthError, match="mup needs a base model"):
        prepare(model, "mup", lr=0.1)


def test_stdlib_text_is_deterministic_and_local():
    a = load_stdlib_text(n_bytes=50_000, val_fraction=0.2)
    b = load_stdlib_text(n_bytes=50_000, val_fraction=0.2)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert a.train.numel() == 40_000 and a.val.numel() == 10_000
    assert a.meta["source"] == sysconfig.get_paths()["stdlib"] and a.meta["files"] >= 1
    assert int(a.train.max()) < 256 and a.train.dtype == torch.int64
    # the first file in sorted order is where the text starts
    text = bytes(a.train[:200].tolist()).decode("utf-8", "replace")
    assert text.isprintable() or "\n" in text
    with pytest.raises(DatasetError, match="n_bytes must be an integer >= 1000"):
        load_stdlib_text(n_bytes=10)


def test_stdlib_text_from_a_folder_in_sorted_order(tmp_path):
    (tmp_path / "b.py").write_text("B" * 600)
    (tmp_path / "a.py").write_text("A" * 600)
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "site-packages" / "0.py").write_text("X" * 600)
    t = load_stdlib_text(n_bytes=1100, root=tmp_path)
    raw = bytes(torch.cat([t.train, t.val]).tolist())
    assert raw == b"A" * 600 + b"\n" + b"B" * 499  # a.py first, third-party files left out
    with pytest.raises(DatasetError, match="fewer than n_bytes=5000; lower n_bytes"):
        load_stdlib_text(n_bytes=5000, root=tmp_path)


def test_text_batches_are_windows_of_the_text():
    tokens = torch.arange(1000)
    b = text_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert b.shape == (4, 17) and bool((b[:, 1:] - b[:, :-1] == 1).all())
    c = text_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(b, c)
    with pytest.raises(DatasetError, match="too short"):
        text_batch(torch.arange(10), 1, 16, torch.Generator())
