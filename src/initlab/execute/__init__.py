"""The executor and its targets: a plan filled into a model, fresh storage, shards or files.

* :mod:`.executor`: the one loop (seed check, streams, staging, all-or-nothing commit,
  measurement, progress) and the :class:`~.executor.Target` protocol;
* :mod:`.fill`: the fill of one row into a tensor or a window (``fill_row``, ``regenerate``);
* targets: :mod:`.inplace` (``initialize``), :mod:`.meta` (``materialize``, ``meta_build``),
  :mod:`.checkpoint` (``write_checkpoint``, safetensors), with DTensor shards through :mod:`.shard`;
  :mod:`.fsdp` is the sharded front end (``initialize_sharded``);
* :mod:`.buffers`: buffers of meta-built models (the layer registry says how layers make them).
"""

from .buffers import BufferInit, MaterializeError
from .checkpoint import CheckpointError, load_checkpoint, write_checkpoint
from .executor import Target, check_seed, execute
from .fill import achieved_std, fill_row, regenerate, row_stream
from .fsdp import initialize_sharded
from .inplace import as_apply_fn, initialize
from .meta import materialize, meta_build
from .shard import FullTensorNotice, ShardingError

__all__ = [
    "BufferInit",
    "CheckpointError",
    "FullTensorNotice",
    "MaterializeError",
    "ShardingError",
    "Target",
    "achieved_std",
    "as_apply_fn",
    "check_seed",
    "execute",
    "fill_row",
    "initialize",
    "initialize_sharded",
    "load_checkpoint",
    "materialize",
    "meta_build",
    "regenerate",
    "row_stream",
    "write_checkpoint",
]
