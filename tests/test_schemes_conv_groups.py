"""Delta-orthogonal and ZerO respect conv groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.schemes.orthogonal import DeltaOrthogonal
from initlab.schemes.structured import ZerO


def test_delta_orthogonal_grouped_shape_fails_in_validate():
    conv = nn.Conv2d(8, 4, 3, groups=2)
    fans = initlab.compute_fans(conv, "weight")
    shape = tuple(conv.weight.shape)  # (4, 4, 3, 3): per group [out/g, in/g] = [2, 4]
    with pytest.raises(ValueError, match=r"\[out/g, in/g\] = \[2, 4\]"):
        DeltaOrthogonal().validate(shape, fans)
    before = conv.weight.detach().clone()
    with pytest.raises(ValueError):
        DeltaOrthogonal()(conv.weight, fans)
    assert torch.equal(conv.weight, before)


def test_delta_orthogonal_grouped_ok_shape_validates():
    conv = nn.Conv2d(4, 8, 3, groups=2)  # per group [4, 2]
    fans = initlab.compute_fans(conv, "weight")
    assert DeltaOrthogonal().validate(tuple(conv.weight.shape), fans) is fans


# -- 3. truncated-normal moments ------------------------------------------------------------
def test_zero_hadamard_depthwise_is_identity_per_channel():
    conv = nn.Conv2d(32, 32, 3, groups=32, padding=1, bias=False)
    fans = initlab.compute_fans(conv, "weight")
    ZerO()(conv.weight, fans)
    w = conv.weight.detach()
    assert torch.equal(w[:, 0, 1, 1], torch.ones(32))
    assert w.abs().sum().item() == 32.0
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        y = conv(x)
    assert torch.allclose(y, x)
    assert y.norm().item() == pytest.approx(x.norm().item(), rel=1e-6)


def test_zero_hadamard_grouped_one_matrix_per_group():
    conv = nn.Conv2d(8, 16, 1, groups=2, bias=False)  # per group [8, 4]: Hadamard rows
    fans = initlab.compute_fans(conv, "weight")
    ZerO()(conv.weight, fans)
    w = conv.weight.detach()[:, :, 0, 0]
    per = initlab.schemes.structured.zero_matrix(8, 4).float()
    assert torch.equal(w[:8], per) and torch.equal(w[8:], per)
    # each group's block has orthonormal columns (m = 8 is a power of two): the group maps its
    # 4 inputs isometrically; the ungrouped matrix zero_matrix(16, 4) split in halves would not
    for g in range(2):
        blk = w[8 * g : 8 * (g + 1)].double()
        assert torch.allclose(blk.T @ blk, torch.eye(4, dtype=torch.float64), atol=1e-6)
    assert abs(w[0, 0].item()) == pytest.approx(2**-1.5)


# -- 5. drop-in argument types ---------------------------------------------------------------
def _pair(shape=(7, 5)):
    return torch.empty(shape), torch.empty(shape)
