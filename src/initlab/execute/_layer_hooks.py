"""The layer-specific bits the executor needs, one small function each.

They are the only places the fill knows about layer types; the layer registry replaces them
with one call each (the padding row, the structure a layer keeps, the values of its buffers).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..report import ParamRow


def padding_row(row: ParamRow, module: nn.Module | None) -> int | None:
    """The row index (>= 0) an Embedding keeps at zero, or None.

    From the module when given, else from the fans (which record an Embedding's padding_idx).
    """
    if row.param_name != "weight" or not row.shape:
        return None
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        pad = module.padding_idx
    elif module is None and row.fans is not None:
        pad = row.fans.attr("padding_idx")
    else:
        return None
    return None if pad is None else int(pad) % row.shape[0]


def keep_structure(
    row: ParamRow, target: Tensor, index: tuple[slice, ...] | None, module: nn.Module | None
) -> None:
    """Constraints layers rely on, on the filled ``target`` (the window ``index`` of the
    parameter, or all of it): an Embedding's padding_idx row stays zero."""
    pad = padding_row(row, module)
    if pad is None:
        return
    start, stop = (0, row.shape[0]) if index is None else (index[0].start, index[0].stop)
    if start <= pad < stop:
        with torch.no_grad():
            target[pad - start].zero_()


def known_buffer(module: nn.Module, name: str) -> tuple[Any, str] | None:
    """(value, where it comes from) of a buffer torch's own layers define, or None."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        known = {"running_mean": 0, "running_var": 1, "num_batches_tracked": 0}
        if name in known:
            return known[name], f"{type(module).__name__}.{name}"
    return None
