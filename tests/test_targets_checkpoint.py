"""Streaming safetensors checkpoints from a meta-built model, and ``initlab init --out DIR``."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import initlab
from archs import TinyLM, cnn
from initlab.cli import main
from initlab.execute.checkpoint import (
    INDEX_NAME,
    CheckpointError,
    load_checkpoint,
    write_checkpoint,
)

st = pytest.importorskip("safetensors.torch")


def _meta(factory) -> nn.Module:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        return factory()


def _eager(factory, policy: str, seed: int, dtype: torch.dtype | None = None) -> nn.Module:  # type: ignore[no-untyped-def]
    model = factory() if dtype is None else factory().to(dtype)
    initlab.initialize(model, policy, seed, strict=True)
    return model


def _load_all(folder) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    index = json.loads((folder / INDEX_NAME).read_text())
    out: dict[str, torch.Tensor] = {}
    for f in sorted(set(index["weight_map"].values())):
        out.update(st.load_file(folder / f))  # the safetensors library reads our files
    return out


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_sharded_files_load_back_to_initialize(tmp_path, dtype) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ckpt"
    model = _meta(TinyLM)
    index_path = write_checkpoint(model, "gpt2:n_layers=2", 4, out, dtype=dtype,
                                  max_shard_bytes=20_000, progress=False)  # fmt: skip
    assert all(p.is_meta for p in model.parameters())  # the model itself stays on meta
    index = json.loads(index_path.read_text())
    files = sorted(set(index["weight_map"].values()))
    n = len(files)
    assert n > 1 and files == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert index["metadata"]["aliases"] == {"head.weight": "embed.weight"}
    tensors = _load_all(out)
    assert "head.weight" not in tensors  # a tied storage is written once
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size()
                                                  for t in tensors.values())  # fmt: skip
    assert sorted((out / f).name for f in out.iterdir()) == sorted(
        [*files, INDEX_NAME, "init_report.json", "init_report.md"]
    )
    report = json.loads((out / "init_report.json").read_text())
    assert len(report["parameters"]) == len(index["weight_map"])

    ref = _eager(TinyLM, "gpt2:n_layers=2", 4, dtype)
    loaded = load_checkpoint(_meta(TinyLM), out)
    assert loaded.head.weight is loaded.embed.weight
    for (name, a), (name_b, b) in zip(loaded.state_dict().items(), ref.state_dict().items(),
                                      strict=True):  # fmt: skip
        assert name == name_b and a.dtype == b.dtype and torch.equal(a, b), name


def test_plain_load_state_dict_assign(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_checkpoint(_meta(cnn), "kaiming", 2, tmp_path / "c", progress=False)
    model = _meta(cnn)
    model.load_state_dict(_load_all(tmp_path / "c"), assign=True)  # buffers included
    ref = _eager(cnn, "kaiming", 2)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert model[1].num_batches_tracked.dtype == torch.long


def test_bad_targets_write_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not empty"):
        write_checkpoint(_meta(TinyLM), "kaiming", 0, full, progress=False)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    with pytest.raises(CheckpointError, match="meta device"):
        write_checkpoint(TinyLM(), "kaiming", 0, tmp_path / "a", progress=False)
    only_w = initlab.Policy(rules=(initlab.Rule("xavier_uniform", param="weight"),))
    with pytest.raises(CheckpointError, match="bias"):
        write_checkpoint(_meta(lambda: nn.Linear(2, 2)), only_w, 0, tmp_path / "b",
                         progress=False)  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


FACTORY = """
import torch.nn as nn
def small():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
"""


def test_cli_streams_to_a_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "model.py"
    f.write_text(FACTORY)
    out = tmp_path / "ckpt"
    args = ["init", f"{f}:small", "--policy", "xavier", "--seed", "3", "--dtype", "bfloat16"]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    tensors = _load_all(out)
    ref = _eager(lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
                 "xavier", 3, torch.bfloat16)  # fmt: skip
    assert tensors.keys() == ref.state_dict().keys()
    assert all(torch.equal(tensors[k], v) for k, v in ref.state_dict().items())
    res = CliRunner().invoke(main, [*args, "--out", str(out)])  # not empty now
    assert res.exit_code != 0 and "not empty" in res.output
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "sd.pt")])  # a file
    assert res.exit_code == 0, res.output
    sd = torch.load(tmp_path / "sd.pt")
    assert all(torch.equal(sd[k], v) for k, v in ref.state_dict().items())
