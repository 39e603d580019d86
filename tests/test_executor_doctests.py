"""The doctested Examples of the executor, its targets, the fill and the report rows."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "initlab.execute.executor",
    "initlab.execute.fill",
    "initlab.execute.inplace",
    "initlab.execute.meta",
    "initlab.execute.checkpoint",
    "initlab.execute.fsdp",
    "initlab.report",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctested example"
    assert result.failed == 0
