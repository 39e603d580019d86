"""Window scratch buffers live on the tensor's device."""

from __future__ import annotations

import torch

import initlab
from initlab.schemes import get_scheme
from initlab.streams import KeyedStream


def test_window_buffer_on_meta_device_noncontiguous():
    # a non-contiguous local window on a non-CPU device must not get a CPU work buffer
    s = get_scheme("uniform")
    local = torch.empty(6, 4).t()  # non-contiguous CPU
    s.fill_window(local, (4, 6), (slice(None), slice(None)), None, KeyedStream(0, "u"))
    full = torch.empty(4, 6)
    s(full, None, KeyedStream(0, "u"))
    assert torch.equal(local, full)
    with open(initlab.schemes.base.__file__) as f:
        src = f.read()
    assert "torch.empty(local.shape, dtype=local.dtype)" not in src
    assert "torch.empty(region.shape, dtype=region.dtype)" not in src


# -- 8. check_source -------------------------------------------------------------------------
