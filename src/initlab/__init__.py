"""initlab: layer-aware, reproducible, measurable parameter initialisation for PyTorch.

* ``initlab.init``: a drop-in for ``torch.nn.init`` (same names, signatures, numbers).
* ``initlab.compute_fans``: fans and packed-block structure from what a layer connects.
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
from .apply import as_apply_fn, fill_row, initialize, regenerate
from .checkpoint import CheckpointError, load_checkpoint, write_checkpoint
from .diagnostics import Diagnosis, LSUVReport, SchemeComparison, compare_schemes, diagnose, lsuv_
from .distributed import FullTensorNotice, ShardingError, initialize_sharded
from .fans import Block, Fans, compute_fans, fans_from_axes, fans_from_shape
from .gain import calculate_gain, gain
from .materialize import MaterializeError, materialize, meta_build
from .names import canonical_name
from .plan import UnmatchedParametersError, plan
from .policy import (
    ParamInfo,
    Policy,
    PolicyError,
    Rule,
    get_preset,
    list_presets,
    preset_info,
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
from .specs import (
    SpecError,
    build_model,
    format_spec,
    load_policy,
    parse_spec,
    register_model_source,
    resolve_scheme,
    scheme_policy,
)
from .streams import KeyedStream, derive_key
from .zoo import ModelError

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
    "MaterializeError",
    "ModelError",
    "ParamInfo",
    "ParamRow",
    "Policy",
    "PolicyError",
    "RandomSource",
    "Rule",
    "Scheme",
    "SchemeComparison",
    "ShardingError",
    "SpecError",
    "TorchSource",
    "UnmatchedParametersError",
    "__version__",
    "aliases",
    "as_apply_fn",
    "build_model",
    "calculate_gain",
    "canonical_name",
    "compare_schemes",
    "compute_fans",
    "derive_key",
    "diagnose",
    "fans_from_axes",
    "fans_from_shape",
    "fill_row",
    "fixup_scale",
    "format_spec",
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
    "parse_spec",
    "plan",
    "preset_info",
    "regenerate",
    "register_model_source",
    "register_scheme",
    "resolve_scheme",
    "save_policy",
    "scheme_class",
    "scheme_policy",
    "write_checkpoint",
]
