"""Entries: what one column of a comparison initialises with.

``resolve_entry(spec)`` turns a name into an :class:`Entry` (a label, a
:class:`~initlab.policy.Policy` and a JSON-friendly config). Accepted, in this order:

The seeds' six (each scheme on **every weight**, i.e. every parameter with 2 or more
dimensions; 1-D weights of norm layers 1; every bias 0, as the seeds do)
    ``zeros``, ``ones``, ``uniform`` (U[0, 1)), ``uniform_centered`` (U[-0.5, 0.5)),
    ``uniform_rule`` (U[-1/sqrt(n), 1/sqrt(n)], n = fan_in:
    ``variance_scaling(scale=1/3, mode=fan_in, distribution=uniform)``, whose bound is
    sqrt(3 * scale / n) = 1/sqrt(n)) and ``normal_rule`` (N(0, 1/n):
    ``variance_scaling(1, fan_in, normal)``, a true, untruncated normal).
The family presets and friends
    ``xavier``, ``kaiming``, ``lecun`` (the presets of those names), ``orthogonal`` (the
    ``orthogonal_weights`` preset: orthogonal weights, biases 0) and ``torch_default`` (the
    preset of that name: every layer as its ``reset_parameters`` would, from keyed streams).
Any scheme with parameters, in the one spec grammar (:mod:`initlab.specs`)
    ``kaiming_normal:mode=fan_out,nonlinearity=relu`` -> that scheme on every weight, biases 0
    (same layout as the seeds' six). The label is the canonical spec.
Any preset, with arguments
    ``gpt2:n_layers=2``, ``linear_xavier_conv_kaiming`` (deprecated preset names warn).
A policy file
    a path ending in ``.yaml``/``.yml``/``.toml``/``.json`` (or any existing file); the label is
    the file's stem, the config carries the policy's content, so editing the file changes the
    run ids.
Data-dependent LSUV (Mishkin & Matas 2016)
    ``lsuv``: orthonormal weights and zero biases (the paper's pre-init, from keyed streams),
    then LSUV on a batch of the run's training data. ``<entry>+lsuv`` (e.g. ``kaiming+lsuv``):
    any entry above, then LSUV on its weights as they are. The batch is the first
    :data:`LSUV_BATCH` training examples in the run's own data order, so it depends on the
    seed only; LSUV is an explicit second phase, recorded in the entry's config.

Names are matched case-insensitively with ``-`` and ``_`` interchangeable
(:func:`initlab.syntax.canonical_name`) and labelled with underscores. Unknown names raise
:class:`EntryError` listing what is valid.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..policy import DEPRECATED_PRESETS, Policy, PolicyError, Rule, get_preset, list_presets
from ..policy.files import FORMATS
from ..policy.presets import NORMS
from ..schemes import aliases, list_schemes
from ..specs import load_policy, resolve_scheme
from ..syntax import SpecError, canonical_name, format_spec, parse_spec

__all__ = [
    "DEFAULT_ENTRIES",
    "ENTRY_FORMULAS",
    "LSUV_BATCH",
    "SEED_ENTRIES",
    "Entry",
    "EntryError",
    "describe_entry",
    "every_weight_policy",
    "resolve_entries",
    "resolve_entry",
]


class EntryError(ValueError):
    """An entry name that is not a known entry, scheme, preset or policy file.

    Example:
        >>> resolve_entry("nosuch")
        Traceback (most recent call last):
        ...
        initlab.lab.entries.EntryError: unknown entry 'nosuch'. Valid: the defaults zeros, ...
    """


@dataclasses.dataclass(frozen=True)
class Entry:
    """One column of a comparison.

    Attributes:
        label: a short unique name for tables and plots (``"kaiming"``, ``"uniform_rule"``).
        policy: the policy that initialises each run's model.
        config: JSON-friendly description: ``spec`` (canonical), ``kind`` (``seed``,
            ``preset``, ``scheme``, ``file`` or ``policy``) and ``policy`` (its file schema,
            when it can be written), used for run ids.
        data_init: a data-dependent phase after the policy: None or ``"lsuv"``.

    Example:
        >>> entry = resolve_entry("kaiming+lsuv")
        >>> entry.label, entry.data_init, entry.config["kind"]
        ('kaiming+lsuv', 'lsuv', 'preset')
    """

    label: str
    policy: Policy
    config: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    #: a data-dependent phase after the policy: None or "lsuv"
    data_init: str | None = None


#: training examples LSUV measures its output variances on
LSUV_BATCH = 256


# name -> (scheme config, description); applied by every_weight_policy
SEED_ENTRIES: dict[str, tuple[dict[str, Any], str]] = {
    "zeros": ({"name": "zeros"}, "all weights 0"),
    "ones": ({"name": "ones"}, "all weights 1"),
    "uniform": ({"name": "uniform", "a": 0.0, "b": 1.0}, "weights U[0, 1)"),
    "uniform_centered": ({"name": "uniform", "a": -0.5, "b": 0.5}, "weights U[-0.5, 0.5)"),
    "uniform_rule": (
        {
            "name": "variance_scaling",
            "scale": 1.0 / 3.0,
            "mode": "fan_in",
            "distribution": "uniform",
        },
        "weights U[-1/sqrt(fan_in), 1/sqrt(fan_in)]",
    ),
    "normal_rule": (
        {"name": "variance_scaling", "scale": 1.0, "mode": "fan_in", "distribution": "normal"},
        "weights N(0, 1/fan_in)",
    ),
}

# name -> preset spec
PRESET_ENTRIES: dict[str, str] = {
    "xavier": "xavier",
    "kaiming": "kaiming",
    "lecun": "lecun",
    "orthogonal": "orthogonal_weights",
    "torch_default": "torch_default",
}

DEFAULT_ENTRIES: tuple[str, ...] = (*SEED_ENTRIES, *PRESET_ENTRIES)
"""The default comparison: the seeds' six, then xavier, kaiming, lecun, orthogonal and
torch_default (11 entries)."""


#: one line per named entry: its formula (W: every weight; biases 0 unless said), for the
#: report's glossary and ``initlab compare --help``
ENTRY_FORMULAS: dict[str, str] = {
    "zeros": "W = 0: every unit computes the same, symmetry never breaks",
    "ones": "W = 1: every unit the same, activations grow with fan_in",
    "uniform": "W ~ U[0, 1): all positive (mean 1/2), blind to fan_in",
    "uniform_centered": "W ~ U[-0.5, 0.5): Var W = 1/12, blind to fan_in",
    "uniform_rule": "W ~ U[-1/√fan_in, 1/√fan_in]: Var W = 1/(3 fan_in)",
    "normal_rule": "W ~ N(0, 1/fan_in), untruncated",
    "xavier": "W ~ U[-a, a], a = √(6/(fan_in + fan_out)): Var W = 2/(fan_in + fan_out) "
    "(Glorot & Bengio 2010)",
    "kaiming": "W ~ N(0, 2/fan_in): keeps ReLU activations' scale (He et al. 2015)",
    "lecun": "W ~ truncated N with Var W = 1/fan_in (LeCun et al. 1998)",
    "orthogonal": "W = a random orthogonal matrix (QR of a Gaussian), gain 1; convs gain √2 "
    "(Saxe et al. 2014)",
    "torch_default": "each layer's reset_parameters: Linear/Conv W and b ~ U[-1/√fan_in, "
    "1/√fan_in]",
    "lsuv": "orthogonal, then each layer rescaled to unit output variance on a data batch "
    "(Mishkin & Matas 2016)",
}


def describe_entry(entry: Entry) -> str:
    """One line saying what ``entry`` does: :data:`ENTRY_FORMULAS`, else its policy's
    description, else its spec.

    Args:
        entry: a resolved entry (:func:`resolve_entry`).

    Returns:
        The line, for the report's glossary.

    Example:
        >>> describe_entry(resolve_entry("kaiming"))
        "W ~ N(0, 2/fan_in): keeps ReLU activations' scale (He et al. 2015)"
    """
    if entry.label in ENTRY_FORMULAS:
        return ENTRY_FORMULAS[entry.label]
    if entry.label.endswith("+lsuv"):
        base = entry.label[: -len("+lsuv")]
        return f"{ENTRY_FORMULAS.get(base, base)}; then LSUV (unit output variance per layer)"
    return entry.policy.description or str(entry.config.get("spec", entry.label))


def every_weight_policy(scheme: Any, name: str, description: str | None = None) -> Policy:
    """``scheme`` on every parameter with 2+ dimensions, norm weights 1, every bias 0.

    Parameters that are neither (1-D parameters not named ``*bias*`` outside norm layers)
    are left as the model built them.
    """
    return Policy(
        rules=(
            Rule("ones", module=NORMS, param="weight", ndim=1, id="norm-weight"),
            Rule(scheme, ndim=(2, 3, 4, 5, 6), id="weight"),
            Rule("zeros", param="*bias*", id="bias"),
        ),
        name=name,
        description=description or f"every weight {name}, norm weights 1, biases 0",
    )


def _policy_data(policy: Policy) -> dict[str, Any] | None:
    try:
        return policy.to_dict()
    except (PolicyError, TypeError, ValueError):
        return None


def _entry(label: str, policy: Policy, spec: str, kind: str) -> Entry:
    config = {"spec": spec, "kind": kind, "policy": _policy_data(policy)}
    return Entry(label, policy, config)


def _is_policy_file(spec: str) -> bool:
    path = Path(spec)
    return path.suffix.lower() in FORMATS or (("/" in spec or os.sep in spec) and path.is_file())


def _known_schemes() -> list[str]:
    return sorted({c.name for c in list_schemes()} | set(aliases()))


def _unknown(spec: str, why: str = "") -> EntryError:
    return EntryError(
        f"unknown entry {spec!r}{why}. Valid: the defaults {', '.join(DEFAULT_ENTRIES)}; "
        f"presets {', '.join(list_presets())}; any scheme (with parameters, e.g. "
        f"'kaiming_normal:mode=fan_out') of {', '.join(_known_schemes())}; or a policy file "
        f"({', '.join(FORMATS)})"
    )


def resolve_entry(spec: str | Entry | Policy) -> Entry:
    """The :class:`Entry` for a name, scheme spec, preset spec or policy file (module doc).

    An :class:`Entry` is returned as it is; a :class:`Policy` becomes an entry labelled by its
    name.

    Raises:
        EntryError: an unknown name, or a scheme, preset or file that cannot be built (the
            message says which and why).

    Args:
        spec: an entry name (``"kaiming"``, ``"uniform_rule"``), a scheme spec
            (``"kaiming_normal:mode=fan_out"``), a preset spec, a policy file, any of these with
            ``"+lsuv"``, ``"lsuv"``, an Entry or a Policy.

    Returns:
        The :class:`Entry`.

    Example:
        >>> entry = resolve_entry("xavier_uniform")
        >>> entry.label, entry.config["kind"], entry.policy.rules[1].scheme
        ('xavier_uniform', 'scheme', XavierUniform(gain=1.0))
    """
    if isinstance(spec, Entry):
        return spec
    if isinstance(spec, Policy):
        label = spec.name or "policy"
        return _entry(label, spec, label, "policy")
    if not isinstance(spec, str) or not spec.strip():
        raise EntryError(f"an entry must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    key = canonical_name(spec)
    if key == "lsuv":
        base = _entry("lsuv", every_weight_policy("orthogonal", "lsuv"), "lsuv", "lsuv")
        return dataclasses.replace(
            base, data_init="lsuv", config={**base.config, "data_init": "lsuv"}
        )
    if key.endswith("+lsuv"):
        base = resolve_entry(spec[: -len("+lsuv")])
        if base.data_init is not None:
            raise EntryError(f"entry {spec!r}: LSUV is already part of {base.label!r}")
        label = f"{base.label}+lsuv"
        config = {**base.config, "spec": label, "data_init": "lsuv"}
        return dataclasses.replace(base, label=label, data_init="lsuv", config=config)
    if key in SEED_ENTRIES:
        scheme, desc = SEED_ENTRIES[key]
        return _entry(key, every_weight_policy(scheme, key, desc), key, "seed")
    if key in PRESET_ENTRIES:
        return _entry(key, get_preset(PRESET_ENTRIES[key]), key, "preset")
    if _is_policy_file(spec):
        try:
            policy = load_policy(spec)
        except PolicyError as e:
            raise EntryError(f"policy file {spec!r}: {e}") from None
        return _entry(Path(spec).stem, policy, str(Path(spec)), "file")
    try:
        name, params = parse_spec(spec)
    except SpecError as e:
        raise _unknown(spec, f" ({e})") from None
    if "path" in params:
        raise _unknown(spec, " (parameters are key=value)")
    preset = canonical_name(name)
    if preset in list_presets() or preset in DEPRECATED_PRESETS:
        try:
            policy = get_preset(name, **params)
        except PolicyError as e:
            raise EntryError(f"preset {spec!r}: {e}") from None
        canonical = format_spec(DEPRECATED_PRESETS.get(preset, preset), params)
        return _entry(canonical, policy, canonical, "preset")
    canonical = format_spec(canonical_name(name), params)
    scheme = {"name": canonical_name(name), **params}
    try:
        resolve_scheme(scheme)
    except PolicyError as e:
        if e.message.startswith("unknown scheme"):
            raise _unknown(spec) from None
        raise EntryError(f"scheme {spec!r}: {e}") from None
    policy = every_weight_policy(scheme, canonical)
    return _entry(canonical, policy, canonical, "scheme")


def resolve_entries(specs: Iterable[str | Entry | Policy] | str | None = None) -> list[Entry]:
    """Resolve several entries (``None``: :data:`DEFAULT_ENTRIES`; ``"default"`` expands to them).

    Raises:
        EntryError: an unknown entry, or two entries with the same label.
    """
    if specs is None:
        specs = DEFAULT_ENTRIES
    if isinstance(specs, (str, Entry, Policy)):
        specs = [specs]
    out: list[Entry] = []
    for spec in specs:
        if isinstance(spec, str) and canonical_name(spec) in ("default", "defaults"):
            out += [resolve_entry(s) for s in DEFAULT_ENTRIES]
        else:
            out.append(resolve_entry(spec))
    seen: dict[str, Entry] = {}
    for e in out:
        if e.label in seen:
            raise EntryError(f"entry {e.label!r} is given twice; each entry needs its own label")
        seen[e.label] = e
    if not out:
        raise EntryError("no entries to compare")
    return out
