"""``initlab.sources.inputs``: the batch and loss ``initlab diagnose`` gives a library model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab import ModelError
from initlab.sources.inputs import example_inputs, example_loss
from zoo_hf import ZOO

transformers = pytest.importorskip("transformers", reason="hf: models need transformers")


def test_a_language_model_gets_token_ids_and_its_next_token_loss():
    model = initlab.build_model(ZOO["gpt2"][0])
    x = example_inputs(model, 4, seed=0, seq_len=64)
    assert list(x) == ["input_ids"] and x["input_ids"].shape == (4, 32)  # n_positions caps it
    assert x["input_ids"].dtype == torch.int64 and int(x["input_ids"].max()) < 128
    assert torch.equal(x["input_ids"], example_inputs(model, 4, seed=0, seq_len=64)["input_ids"])
    targets, loss_fn = example_loss(model, x)
    assert torch.equal(targets[:, :-1], x["input_ids"][:, 1:])
    uniform = loss_fn(torch.zeros(4, 32, 128), targets)  # flat logits: log(vocab)
    assert float(uniform) == pytest.approx(math.log(128), rel=1e-6)


def test_an_encoder_decoder_gets_decoder_ids_and_a_vision_model_images():
    t5 = initlab.build_model(ZOO["t5"][0])
    x = example_inputs(t5, 2)
    assert sorted(x) == ["decoder_input_ids", "input_ids"]
    assert example_loss(t5, x)[0].shape == x["decoder_input_ids"].shape
    vit = initlab.build_model(ZOO["vit"][0])
    px = example_inputs(vit, 3)["pixel_values"]
    assert px.shape == (3, 3, 32, 32) and px.dtype == torch.float32
    targets, readout = example_loss(vit, {"pixel_values": px}, seed=0)
    out = torch.ones(3, 17, 64)
    assert targets is None and readout(out).shape == ()
    assert torch.equal(readout(out), readout(out))  # a fixed readout: the seed's draw


class Speech(nn.Module):
    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"model_type": "speech"})()


def test_a_model_whose_input_cannot_be_told_is_one_line_error():
    with pytest.raises(ModelError, match="main input is 'input_features'") as e:
        example_inputs(Speech(), 2)
    assert "\n" not in str(e.value)
    assert example_inputs(nn.Linear(2, 2), 2) is None
    assert example_loss(nn.Linear(2, 2), None) == (None, None)


class TimmLike(nn.Module):
    """timm's faces without timm: a pretrained config of 224 and patches built for 32."""

    def __init__(self, img_size: int | None) -> None:
        super().__init__()
        self.pretrained_cfg = {"input_size": (3, 224, 224)}
        self.patch_embed = nn.Module()
        if img_size is not None:
            self.patch_embed.img_size = (img_size, img_size)


def test_a_timm_model_gets_images_of_its_patches_size_else_its_config():
    assert example_inputs(TimmLike(32), 2)["x"].shape == (2, 3, 32, 32)
    assert example_inputs(TimmLike(None), 2)["x"].shape == (2, 3, 224, 224)
