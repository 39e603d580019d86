"""Declarative init policies: ordered rules mapping parameters to schemes.

* :class:`Rule` / :class:`ParamInfo` (:mod:`.rules`): what a rule matches (module type, module
  and parameter name patterns, rank, shape, one block of a packed parameter).
* :class:`Policy` / :class:`Resolution` (:mod:`.policy`): rules in priority order, first match
  wins (block by block for packed parameters), unmatched handling and exclusions.
* :func:`read_policy_file` / :func:`save_policy` (:mod:`.files`): YAML, TOML and JSON files.
  Policies by name (presets, schemes, files) are read by :func:`initlab.specs.load_policy`.
* :func:`get_preset` / :func:`list_presets` (:mod:`.presets`): ready-made policies; the
  libraries' own inits, reading the model, in :mod:`.families` (``gpt2``, ``bert``, ``hf_auto``...).
* :func:`model_quantities` (:mod:`.quantities`): what presets and expressions read from a model
  (config fields, ``n_layer``, ``n_params``, ``width``).
* :mod:`.expressions`: scheme parameters written as safe expressions of those quantities
  (``std: "0.02 / sqrt(2 * n_layer)"``), evaluated when a policy is planned on a model.

Every invalid input raises :class:`PolicyError` (a ``ValueError``) whose ``path`` names the
offending key, e.g. ``rules[2].scheme``.
"""

from . import families  # noqa: F401  (registers the family presets)
from .errors import PolicyError
from .expressions import ExpressionError
from .families import timm_auto, torchvision_auto
from .files import FORMATS, dumps_policy, loads_policy, read_policy_file, save_policy
from .policy import UNMATCHED, Policy, Resolution
from .presets import DEPRECATED_PRESETS, get_preset, list_presets, preset_info, register_preset
from .quantities import model_quantities
from .rules import ParamInfo, Rule

__all__ = [
    "DEPRECATED_PRESETS",
    "FORMATS",
    "UNMATCHED",
    "ExpressionError",
    "ParamInfo",
    "Policy",
    "PolicyError",
    "Resolution",
    "Rule",
    "dumps_policy",
    "get_preset",
    "list_presets",
    "loads_policy",
    "model_quantities",
    "preset_info",
    "read_policy_file",
    "register_preset",
    "save_policy",
    "timm_auto",
    "torchvision_auto",
]
