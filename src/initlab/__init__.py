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
* ``initlab.mup`` / ``mup_param_groups``: width-aware parametrisation (muP) of any model against
  a base model: an init policy, torch param groups, removable readout multipliers.

Names are imported on first use (PEP 562), so ``import initlab`` and ``initlab --help`` load
neither torch nor matplotlib until a name that needs them is used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from . import init
    from .diagnostics import (
        Diagnosis,
        LSUVReport,
        SchemeComparison,
        compare_schemes,
        diagnose,
        lsuv_,
    )
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
    from .mup import Mup, MupError, MupHandle, MupParam, mup, mup_param_groups
    from .plan import GuessedFansError, UnmatchedParametersError, plan
    from .policy import (
        ParamInfo,
        Policy,
        PolicyError,
        Rule,
        get_preset,
        list_presets,
        model_quantities,
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
        build_model,
        load_policy,
        register_model_source,
        resolve_scheme,
        scheme_policy,
    )
    from .streams import KeyedStream, derive_key
    from .syntax import SpecError, canonical_name, format_spec, parse_spec
    from .zoo import ModelError

__version__ = "0.1.0"

#: public names that are modules themselves
_MODULES = frozenset({"init"})
#: public name -> the module (relative to initlab) that defines it
_EXPORTS: dict[str, str] = {
    "init": ".init",
    "as_apply_fn": ".execute",
    "fill_row": ".execute",
    "initialize": ".execute",
    "regenerate": ".execute",
    "CheckpointError": ".execute",
    "load_checkpoint": ".execute",
    "write_checkpoint": ".execute",
    "Diagnosis": ".diagnostics",
    "LSUVReport": ".diagnostics",
    "SchemeComparison": ".diagnostics",
    "compare_schemes": ".diagnostics",
    "diagnose": ".diagnostics",
    "lsuv_": ".diagnostics",
    "FullTensorNotice": ".execute",
    "ShardingError": ".execute",
    "initialize_sharded": ".execute",
    "Block": ".fans",
    "Fans": ".fans",
    "compute_fans": ".layers",
    "LayerSpec": ".layers",
    "Layout": ".layers",
    "ParamSpec": ".layers",
    "register_layer": ".layers",
    "achieved_std": ".execute",
    "fans_from_axes": ".fans",
    "fans_from_shape": ".fans",
    "calculate_gain": ".gain",
    "gain": ".gain",
    "MaterializeError": ".execute",
    "materialize": ".execute",
    "meta_build": ".execute",
    "canonical_name": ".syntax",
    "Mup": ".mup",
    "MupError": ".mup",
    "MupHandle": ".mup",
    "MupParam": ".mup",
    "mup": ".mup",
    "mup_param_groups": ".mup",
    "UnmatchedParametersError": ".plan",
    "GuessedFansError": ".plan",
    "plan": ".plan",
    "ParamInfo": ".policy",
    "Policy": ".policy",
    "PolicyError": ".policy",
    "Rule": ".policy",
    "get_preset": ".policy",
    "list_presets": ".policy",
    "model_quantities": ".policy",
    "preset_info": ".policy",
    "save_policy": ".policy",
    "InitReport": ".report",
    "ParamRow": ".report",
    "RandomSource": ".rng",
    "TorchSource": ".rng",
    "Scheme": ".schemes",
    "aliases": ".schemes",
    "fixup_scale": ".schemes",
    "get_scheme": ".schemes",
    "list_schemes": ".schemes",
    "register_scheme": ".schemes",
    "scheme_class": ".schemes",
    "SpecError": ".syntax",
    "build_model": ".specs",
    "format_spec": ".syntax",
    "load_policy": ".specs",
    "parse_spec": ".syntax",
    "register_model_source": ".specs",
    "resolve_scheme": ".specs",
    "scheme_policy": ".specs",
    "KeyedStream": ".streams",
    "derive_key": ".streams",
    "ModelError": ".zoo",
}

__all__ = [
    "Block",
    "CheckpointError",
    "Diagnosis",
    "Fans",
    "FullTensorNotice",
    "GuessedFansError",
    "InitReport",
    "KeyedStream",
    "LSUVReport",
    "LayerSpec",
    "Layout",
    "MaterializeError",
    "ModelError",
    "Mup",
    "MupError",
    "MupHandle",
    "MupParam",
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
    "SpecError",
    "TorchSource",
    "UnmatchedParametersError",
    "__version__",
    "achieved_std",
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
    "model_quantities",
    "mup",
    "mup_param_groups",
    "parse_spec",
    "plan",
    "preset_info",
    "regenerate",
    "register_layer",
    "register_model_source",
    "register_scheme",
    "resolve_scheme",
    "save_policy",
    "scheme_class",
    "scheme_policy",
    "write_checkpoint",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'initlab' has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = mod if name in _MODULES else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """initlab's module type: a submodule named like a public function (``plan``, ``gain``,
    ``materialize``) does not replace the function when the submodule is imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS and name not in _MODULES:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
