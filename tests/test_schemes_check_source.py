"""Schemes state which random sources they accept (check_source)."""

from __future__ import annotations

import pytest

from initlab.schemes import get_scheme
from initlab.schemes.basic import TruncNormal
from initlab.schemes.structured import Scaled


def test_check_source():
    TruncNormal().check_source("keyed")
    TruncNormal().check_source("torch")
    TruncNormal(method="torch").check_source("torch")
    with pytest.raises(ValueError, match=r"trunc_normal\(method='torch'\) needs rng='torch'"):
        TruncNormal(method="torch").check_source("keyed")
    with pytest.raises(ValueError, match="needs rng='torch'"):
        Scaled(TruncNormal(method="torch"), 2.0).check_source("keyed")
    Scaled(TruncNormal(), 2.0).check_source("keyed")
    get_scheme("orthogonal").check_source("keyed")
    with pytest.raises(ValueError, match="kind"):
        get_scheme("uniform").check_source("numpy")
