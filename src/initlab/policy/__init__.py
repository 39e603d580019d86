"""Declarative init policies: ordered rules mapping parameters to schemes.

* :class:`Rule` / :class:`ParamInfo` (:mod:`.rules`): what a rule matches (module type, module
  and parameter name patterns, rank, shape, one block of a packed parameter).
* :class:`Policy` / :class:`Resolution` (:mod:`.policy`): rules in priority order, first match
  wins (block by block for packed parameters), unmatched handling and exclusions.
* :func:`load_policy` / :func:`save_policy` (:mod:`.files`): YAML, TOML and JSON files, and
  presets by name (``"gpt2:n_layers=12"``).
* :func:`get_preset` / :func:`list_presets` (:mod:`.presets`): ready-made policies.

Every invalid input raises :class:`PolicyError` (a ``ValueError``) whose ``path`` names the
offending key, e.g. ``rules[2].scheme``.
"""

from .files import FORMATS, dumps_policy, load_policy, loads_policy, save_policy
from .policy import UNMATCHED, Policy, Resolution
from .presets import get_preset, get_preset_spec, list_presets, register_preset
from .rules import ParamInfo, PolicyError, Rule

__all__ = [
    "FORMATS",
    "UNMATCHED",
    "ParamInfo",
    "Policy",
    "PolicyError",
    "Resolution",
    "Rule",
    "dumps_policy",
    "get_preset",
    "get_preset_spec",
    "list_presets",
    "load_policy",
    "loads_policy",
    "register_preset",
    "save_policy",
]
