"""The drop-ins accept torch's argument types (numpy scalars, 0-d tensors, upper-case modes) with
bit parity.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from initlab import init
from initlab.schemes import get_scheme
from initlab.schemes.base import Scheme
from initlab.schemes.basic import Constant
from initlab.schemes.variance import VarianceScaling


def _pair(shape=(7, 5)):
    return torch.empty(shape), torch.empty(shape)


@pytest.mark.parametrize(
    "fn,args,kwargs",
    [
        ("constant_", (np.float32(0.5),), {}),
        ("constant_", (torch.tensor(0.5),), {}),
        ("constant_", (True,), {}),
        ("uniform_", (np.float32(-1), 1), {}),
        ("normal_", (), {"std": np.float32(0.1)}),
        ("xavier_uniform_", (), {"gain": np.float32(2)}),
        ("xavier_normal_", (), {"gain": torch.tensor(1.5)}),
        ("orthogonal_", (), {"gain": torch.tensor(2.0)}),
        ("kaiming_uniform_", (), {"mode": "FAN_OUT"}),
        ("kaiming_normal_", (), {"mode": "Fan_In", "nonlinearity": "relu"}),
        ("sparse_", (np.float64(0.3),), {"std": np.float32(0.1)}),
    ],
)
def test_dropin_numeric_types_bit_parity(fn, args, kwargs):
    ours, ref = _pair()
    random = fn not in ("constant_",)
    gen_kw = {"generator": torch.Generator().manual_seed(3)} if random else {}
    ref_kw = {"generator": torch.Generator().manual_seed(3)} if random else {}
    if fn == "sparse_":  # torch draws sparse_'s mask from the global generator
        torch.manual_seed(0)
        getattr(torch.nn.init, fn)(ref, *args, **kwargs)
        torch.manual_seed(0)
        getattr(init, fn)(ours, *args, **kwargs)
    else:
        getattr(torch.nn.init, fn)(ref, *args, **kwargs, **ref_kw)
        getattr(init, fn)(ours, *args, **kwargs, **gen_kw)
    assert torch.equal(ours, ref)


def test_dropin_numbers_are_stored_as_python_numbers():
    assert type(Constant(np.float32(0.5)).val) is float
    assert type(Constant(torch.tensor(0.5)).val) is float
    assert Constant(True).val == 1 and type(Constant(True).val) is int
    assert type(Constant(np.int64(3)).val) is int
    assert type(Constant(torch.tensor(3)).val) is int
    s = get_scheme("uniform", a=np.float32(-1), b=torch.tensor(2.0))
    assert (type(s.a), type(s.b)) == (float, float)
    assert get_scheme("kaiming_uniform", mode="FAN_OUT").mode == "fan_out"
    assert VarianceScaling(np.float64(2.0), "FAN_AVG").mode == "fan_avg"
    for sch in (
        s,
        get_scheme("xavier_uniform", gain=np.float32(2)),
        get_scheme("orthogonal", gain=torch.tensor(2.0)),
        get_scheme("trunc_normal", mean=np.float32(0), std=torch.tensor(0.5), a=np.int32(-1)),
    ):
        json.dumps(sch.to_config())
        assert Scheme.from_config(sch.to_config()) == sch


def test_dropin_rejects_non_scalar_tensors_and_bool_gains():
    with pytest.raises(ValueError):
        Constant(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError):
        get_scheme("orthogonal", gain=torch.tensor([2.0]))
    with pytest.raises(ValueError):
        get_scheme("orthogonal", gain=True)


# -- 6. nonlinearity gains -----------------------------------------------------------------
