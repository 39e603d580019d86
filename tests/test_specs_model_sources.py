"""The library model specs (``timm:NAME?key=value&...``, ``torchvision:NAME``): the query
grammar, and the one-line errors when the library is missing. Building real timm/torchvision
models is tested in the zoo (tests/test_zoo_timm.py)."""

from __future__ import annotations

import importlib.util

import pytest

import initlab
from initlab.sources import parse_query
from initlab.zoo import ModelError


@pytest.mark.parametrize(
    ("rest", "want"),
    [
        ("resnet18", ("resnet18", {})),
        (" resnet18 ", ("resnet18", {})),
        ("vit?depth=2&img_size=32", ("vit", {"depth": 2, "img_size": 32})),
        (
            "convnext?depths=1,1,1,1&ls_init_value=1e-6",
            ("convnext", {"depths": (1, 1, 1, 1), "ls_init_value": 1e-6}),
        ),
        ("m?flag=true&act=gelu&none=null&", ("m", {"flag": True, "act": "gelu", "none": None})),
    ],
)
def test_query_values_are_typed(rest: str, want: tuple) -> None:
    assert parse_query("timm", rest) == want


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ("", r"^model spec 'timm:' names no model; write 'timm:NAME'$"),
        ("?depth=2", r"^model spec 'timm:\?depth=2' names no model"),
        ("vit?depth", r"'depth' is not key=value; write 'timm:vit\?key=value&key=value'$"),
        ("vit?2x=1", r"'2x=1' is not key=value"),
    ],
)
def test_bad_queries_say_what_to_write(rest: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_query("timm", rest)


def test_the_prefixes_are_registered() -> None:
    assert {"timm", "torchvision"} <= set(initlab.specs.model_sources())


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_spec_without_timm_says_how_to_install_it() -> None:
    with pytest.raises(ModelError, match=r"^model 'timm:resnet18' needs timm: pip install timm"):
        initlab.build_model("timm:resnet18")


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed"
)
def test_torchvision_spec_without_torchvision_says_how_to_install_it() -> None:
    with pytest.raises(ModelError, match=r"^model 'torchvision:resnet18' needs torchvision"):
        initlab.build_model("torchvision:resnet18")
