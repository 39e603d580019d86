"""Windows: the global flat indices of ``full[index]`` for a tensor of ``global_shape``."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

__all__ = ["Window"]


class Window:
    """The global flat indices of ``full[index]`` for a tensor of ``global_shape``.

    Args:
        global_shape: the full tensor's shape.
        index: an int, a step-1 slice, or a tuple of them (missing trailing dims are whole).

    Attributes:
        ranges: per dimension, the range of global indices.
        shape: the window's shape with every dimension kept; ``squeezed_shape`` drops those
            indexed by an int (the shape of ``full[index]``).

    Example:
        >>> w = Window((3, 4), (slice(1, 3), slice(2, 4)))
        >>> w.shape, w.flat.tolist(), w.contiguous_start
        ((2, 2), [6, 7, 10, 11], None)
        >>> Window((3, 4), slice(1, 3)).contiguous_start  # whole rows: one range from 4
        4
    """

    def __init__(self, global_shape: Sequence[int], index: object) -> None:
        gshape = tuple(operator.index(s) for s in global_shape)
        if any(s < 0 for s in gshape):
            raise ValueError(f"global_shape must hold sizes >= 0, got {gshape}")
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) > len(gshape):
            raise IndexError(f"window index {index!r} has more entries than {gshape}")
        idx = idx + (slice(None),) * (len(gshape) - len(idx))
        self.ranges: list[range] = []
        squeezed = []
        for d, (ix, size) in enumerate(zip(idx, gshape, strict=True)):
            if isinstance(ix, slice):
                start, stop, step = ix.indices(size)
                if step != 1:
                    raise ValueError(f"window slices must have step 1, got {ix} in dim {d}")
                self.ranges.append(range(start, max(start, stop)))
                squeezed.append(len(self.ranges[-1]))
                continue
            i = operator.index(ix)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of range for dim {d} of size {size}")
            self.ranges.append(range(i % size, i % size + 1))
        self.global_shape, self.squeezed_shape = gshape, tuple(squeezed)
        self.shape = tuple(len(r) for r in self.ranges)
        self._flat: np.ndarray | None = None

    @property
    def contiguous_start(self) -> int | None:
        """The first flat index when the window is one contiguous row-major range, else None.

        That is the case when every dimension after the first partial one is whole, e.g. a
        ``Shard(0)`` slab of rows: such windows are generated as a plain range, with no index
        arrays.
        """
        partial = [
            d
            for d, (r, s) in enumerate(zip(self.ranges, self.global_shape, strict=True))
            if len(r) != s
        ]
        if partial and any(len(r) != 1 for r in self.ranges[: partial[-1]]):
            return None
        first = tuple(r.start for r in self.ranges)
        if not first or any(len(r) == 0 for r in self.ranges):
            return 0 if not first else None
        return int(np.ravel_multi_index(first, self.global_shape))

    @property
    def flat(self) -> np.ndarray:
        """The window's global flat indices, row-major (hence increasing)."""
        if self._flat is None:
            grid = np.ix_(*[np.arange(r.start, r.stop, dtype=np.int64) for r in self.ranges])
            dims = self.global_shape if self.global_shape else (1,)
            grid = grid if grid else (np.zeros(1, dtype=np.int64),)
            self._flat = np.ravel_multi_index(grid, dims).reshape(-1)
        return self._flat
