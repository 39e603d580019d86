"""Moments of the truncated normal, checked against scipy and mpmath references."""

from __future__ import annotations

import math

import pytest
from scipy.stats import truncnorm

from initlab.schemes.basic import TruncNormal, _trunc_moments_std


@pytest.mark.parametrize(
    "a,b", [(-2, 2), (0, math.inf), (10, 11), (-40, -39), (5, 6), (-3, -1), (-math.inf, 1)]
)
def test_trunc_moments_std_matches_scipy(a, b):
    assert _trunc_moments_std(a, b) == pytest.approx(float(truncnorm.std(a, b)), rel=1e-6)


def test_trunc_moments_std_narrow_tail():
    # scipy 1.17 itself is off by 4.9e-6 here; reference from mpmath at 200 digits
    assert _trunc_moments_std(4, 4.001) == pytest.approx(2.886750142846968209e-4, rel=1e-10)
    assert _trunc_moments_std(-4.001, -4) == pytest.approx(2.886750142846968209e-4, rel=1e-10)
    assert _trunc_moments_std(4, 4.001) == pytest.approx(float(truncnorm.std(4, 4.001)), rel=1e-5)


def test_trunc_normal_target_std_far_tails_do_not_raise():
    assert TruncNormal(std=2.0, a=10, b=11, bounds="std").target_std(None) == pytest.approx(
        2 * float(truncnorm.std(10, 11)), rel=1e-6
    )
    assert TruncNormal(a=-40, b=-39).target_std(None) == pytest.approx(
        float(truncnorm.std(-40, -39)), rel=1e-6
    )
    r = _trunc_moments_std(1e308, math.inf)  # std ~ 1e-308: not representable usefully
    assert r is None or 0.0 <= r < 1e-300


# -- 4. ZerO honours conv groups -------------------------------------------------------------
