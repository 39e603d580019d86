"""initlab: layer-aware, reproducible, measurable parameter initialisation for PyTorch.

* ``initlab.init``: a drop-in for ``torch.nn.init`` (same names, signatures, numbers).
* ``initlab.compute_fans``: fans and packed-block structure from what a layer connects, read
  from the layer registry (:mod:`initlab.layers`; teach it a layer with ``register_layer``).
* ``initlab.calculate_gain`` (torch's table) and ``initlab.gain`` (any activation).
* ``initlab.get_scheme``: every scheme as a small serialisable object.
* ``initlab.Policy`` / ``Rule`` / presets, ``initlab.initialize`` / ``plan``: declarative init
  with a report, values keyed by (seed, parameter name).
* ``initlab.diagnose`` / ``compare_schemes`` / ``lsuv_``: measure signal propagation at init,
  and data-dependent LSUV init (package :mod:`initlab.diagnostics`).
* ``initlab.materialize`` / ``initialize_sharded`` / ``write_checkpoint``: big models built on
  the meta device, DTensor/FSDP2 shards filled locally, safetensors streamed to disk.
"""

from . import init
from .diagnostics import Diagnosis, LSUVReport, SchemeComparison, compare_schemes, diagnose, lsuv_
from .execute import (
    CheckpointError,
    FullTensorNotice,
    MaterializeError,
    ShardingError,
    achieved_std,
    as_apply_fn,
    fill_row,
    initialize,
    initialize_sharded,
    load_checkpoint,
    materialize,
    meta_build,
    regenerate,
    write_checkpoint,
)
from .fans import Block, Fans, fans_from_axes, fans_from_shape
from .gain import calculate_gain, gain
from .layers import LayerSpec, Layout, ParamSpec, compute_fans, register_layer
from .plan import UnmatchedParametersError, plan
from .policy import (
    ParamInfo,
    Policy,
    PolicyError,
    Rule,
    get_preset,
    list_presets,
    load_policy,
    save_policy,
)
from .report import InitReport, ParamRow
from .rng import RandomSource, TorchSource
from .schemes import (
    Scheme,
    aliases,
    fixup_scale,
    get_scheme,
    list_schemes,
    register_scheme,
    scheme_class,
)
from .streams import KeyedStream, derive_key

__version__ = "0.1.0"

__all__ = [
    "Block",
    "CheckpointError",
    "Diagnosis",
    "Fans",
    "FullTensorNotice",
    "InitReport",
    "KeyedStream",
    "LSUVReport",
    "LayerSpec",
    "Layout",
    "MaterializeError",
    "ParamInfo",
    "ParamRow",
    "ParamSpec",
    "Policy",
    "PolicyError",
    "RandomSource",
    "Rule",
    "Scheme",
    "SchemeComparison",
    "ShardingError",
    "TorchSource",
    "UnmatchedParametersError",
    "__version__",
    "achieved_std",
    "aliases",
    "as_apply_fn",
    "calculate_gain",
    "compare_schemes",
    "compute_fans",
    "derive_key",
    "diagnose",
    "fans_from_axes",
    "fans_from_shape",
    "fill_row",
    "fixup_scale",
    "gain",
    "get_preset",
    "get_scheme",
    "init",
    "initialize",
    "initialize_sharded",
    "list_presets",
    "list_schemes",
    "load_checkpoint",
    "load_policy",
    "lsuv_",
    "materialize",
    "meta_build",
    "plan",
    "regenerate",
    "register_layer",
    "register_scheme",
    "save_policy",
    "scheme_class",
    "write_checkpoint",
]
