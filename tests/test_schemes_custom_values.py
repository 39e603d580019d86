"""Values from custom functions are checked: shape, dtype (floats cast to the parameter's
dtype; integers, bools and complex refused), finite; errors are one line naming the
parameter and rule when they come through ``initialize``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab import Policy, Rule, get_scheme


def _fill(values, dtype: torch.dtype = torch.float32) -> torch.Tensor:  # type: ignore[no-untyped-def]
    t = torch.zeros(3, 2, dtype=dtype)
    get_scheme("custom", fn=lambda shape, g: values)(t)
    return t


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_float64_results_are_cast_to_the_parameter_dtype(dtype: torch.dtype) -> None:
    values = np.random.default_rng(0).normal(size=(3, 2))
    t = _fill(values, dtype)
    assert t.dtype == dtype
    assert torch.equal(t, torch.from_numpy(values).to(dtype))  # round to nearest, as .to()


def test_float16_and_torch_results_and_python_numbers_are_accepted() -> None:
    half = np.full((3, 2), 0.1, dtype=np.float16)
    assert torch.equal(_fill(half), torch.from_numpy(half).float())
    assert torch.equal(
        _fill(torch.full((3, 2), 2.5, dtype=torch.bfloat16)), torch.full((3, 2), 2.5)
    )
    assert torch.equal(_fill(3), torch.full((3, 2), 3.0))  # a Python int is a float
    assert torch.equal(_fill(0.5), torch.full((3, 2), 0.5))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.ones((3, 2), dtype=np.int32), "int32"),
        (torch.ones(3, 2, dtype=torch.int64), "int64"),
        (np.ones((3, 2), dtype=bool), "bool"),
        (True, "bool"),
        (np.ones((3, 2), dtype=np.complex64), "complex"),
    ],
)
def test_integer_bool_and_complex_results_are_refused(values, kind: str) -> None:  # type: ignore[no-untyped-def]
    t = torch.zeros(3, 2)
    with pytest.raises(TypeError, match=rf"custom: fn returned {kind} values; return floating"):
        get_scheme("custom", fn=lambda shape, g: values)(t)
    assert not t.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused_with_a_one_line_error_naming_the_parameter(bad: float) -> None:
    values = np.zeros((4, 3))
    values[1, 2] = bad
    model = nn.Sequential(nn.Linear(3, 4, bias=False))
    before = model[0].weight.detach().clone()
    pol = Policy(rules=(Rule(get_scheme("custom", fn=lambda shape, g: values), id="mine"),))
    with pytest.raises(ValueError) as info:
        initlab.initialize(model, pol, 0)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == ("parameter '0.weight' (rule mine): custom: fn returned 1 NaN or inf "
                   "value(s); it must return finite numbers")  # fmt: skip
    assert torch.equal(model[0].weight, before)


def test_values_that_overflow_the_parameter_dtype_are_refused() -> None:
    t = torch.zeros(2, dtype=torch.float16)
    with pytest.raises(
        ValueError, match=r"1 value\(s\) of fn overflow the parameter's dtype float16"
    ):
        get_scheme("custom", fn=lambda shape, g: np.array([1.0, 1e6]))(t)
    assert not t.any()


def test_wrong_shape_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\) for a tensor of shape \(3, 2\)"):
        _fill(np.zeros((2, 3)))
