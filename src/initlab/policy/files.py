"""Policy files: load and save a policy as YAML, TOML or JSON (one schema for all three).

Schema (``rules`` in priority order; every key optional but a rule's ``scheme``)::

    name: my-policy
    description: what it is for
    unmatched: leave            # leave | default | error
    default: torch_default      # the scheme for unmatched parameters (unmatched: default)
    exclude: ["encoder.*"]      # qualified parameter names (globs or re:) never touched
    rules:
      - scheme: {name: kaiming_normal, mode: fan_out, nonlinearity: relu}
        module: [Conv2d, torch.nn.Conv1d]     # class names or dotted paths
        param: weight
      - scheme: normal                        # a name, with parameters inline under params
        params: {std: 0.02}
        name: "*.c_proj"                      # module name: glob, or "re:<regex>"
        ndim: [2, 3]
        shape: [null, 768]                    # null (or "*") is a wildcard
        block: f                              # one block of a packed parameter
        id: residual-proj

Values that a format lacks are written the way the scheme configs read them back: TOML has no
null (None fields are omitted, wildcard shape entries are written ``"*"``), JSON has no
infinity (``"inf"``), and lists come back as tuples. Errors are :class:`PolicyError` with the
file and the key path; syntax errors carry the line number.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from .policy import Policy
from .rules import PolicyError

__all__ = ["FORMATS", "dumps_policy", "load_policy", "loads_policy", "save_policy"]

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}

PolicySource = Policy | Mapping[str, Any] | str | os.PathLike[str]


# -- YAML: YAML 1.2 floats (1e-3 is a float, not a string), same rules for dump and load ----
class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+\Z"),
        list("-+0123456789."),
    )


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # PyYAML's plain and single-quoted styles lose NEL and the Unicode line/paragraph separators
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


# -- TOML ----------------------------------------------------------------------------------
def _toml_reader() -> Any:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise PolicyError(
                "reading TOML on Python 3.10 needs the 'tomli' package: pip install tomli"
            ) from None
    return tomllib


def _toml_ready(v: Any) -> Any:
    """Policy data in the shape TOML can hold: no nulls (absent keys; a wildcard ``None`` in
    a shape becomes ``"*"``, which reads back as ``None``), tuples as arrays."""
    if isinstance(v, Mapping):
        return {str(k): _toml_ready(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return ["*" if x is None else _toml_ready(x) for x in v]
    return v


def _to_toml(data: Mapping[str, Any]) -> str:
    """TOML text for policy data (tomli-w): top-level keys, then one ``[[rules]]`` per rule."""
    try:
        return tomli_w.dumps(_toml_ready(data))
    except TypeError as e:
        raise PolicyError(f"cannot write this policy to TOML: {e}") from None


# -- text <-> data -------------------------------------------------------------------------
def _syntax_error(fmt: str, message: str, line: int | None) -> PolicyError:
    where = f"line {line}" if line else None
    return PolicyError(f"invalid {fmt.upper()}: {' '.join(message.split())}", where)


def _parse(text: str, fmt: str) -> Any:
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise _syntax_error(fmt, f"{e.msg} (column {e.colno})", e.lineno) from None
    if fmt == "yaml":
        try:
            return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            msg = " ".join(str(x) for x in (e.context, e.problem) if x)
            raise _syntax_error(fmt, msg, mark.line + 1 if mark else None) from None
        except yaml.YAMLError as e:
            raise _syntax_error(fmt, str(e), None) from None
    if fmt == "toml":
        tomllib = _toml_reader()
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            msg = str(e)
            m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
            line = getattr(e, "lineno", None) or (int(m.group(1)) if m else None)
            msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
            if m:
                msg += f" (column {m.group(2)})"
            raise _syntax_error(fmt, msg, line) from None
    raise PolicyError(f"unknown format {fmt!r}; use one of yaml, toml, json")


def _dump(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    if fmt == "toml":
        return _to_toml(data)
    raise PolicyError(f"unknown format {fmt!r}; use one of yaml, toml, json")


def loads_policy(text: str, fmt: str = "yaml") -> Policy:
    """A policy from the text of a policy file in format ``fmt`` (yaml, toml or json)."""
    data = _parse(text, fmt)
    if data is None:
        data = {}
    return Policy.from_dict(data)


def dumps_policy(policy: Policy, fmt: str = "yaml") -> str:
    """The text of a policy file in format ``fmt`` (yaml, toml or json)."""
    return _dump(policy.to_dict(), fmt)


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PolicyError(
            f"unsupported file extension {path.suffix or '(none)'!r}; use one of "
            f"{', '.join(FORMATS)}",
            file=str(path),
        )
    return fmt


# -- public --------------------------------------------------------------------------------
def load_policy(source: PolicySource) -> Policy:
    """A policy from a Policy (returned), a mapping, a preset or a policy file.

    Args:
        source: a :class:`Policy`; a mapping in the file schema; a preset name, optionally
            with arguments (``"gpt2:n_layers=12,std=0.02"``; see :func:`get_preset`); or the
            path of a ``.yaml``/``.yml``/``.toml``/``.json`` file.

    Raises:
        PolicyError: with the file, the key path and the fix.
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return Policy.from_dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise PolicyError(
            f"expected a Policy, a mapping, a preset name or a policy file path, got "
            f"{type(source).__name__}"
        )
    path = Path(source)
    if isinstance(source, str) and path.suffix.lower() not in FORMATS and not path.exists():
        from .presets import get_preset_spec

        return get_preset_spec(source)
    fmt = _format_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("no such policy file", file=str(path)) from None
    except OSError as e:
        raise PolicyError(
            f"cannot read the policy file: {e.strerror or e}", file=str(path)
        ) from None
    try:
        return loads_policy(text, fmt)
    except PolicyError as e:
        raise e.in_file(str(path)) from None


def save_policy(policy: PolicySource, path: str | os.PathLike[str]) -> Path:
    """Write ``policy`` (anything :func:`load_policy` accepts) to ``path``, format by extension.

    Returns the path written. Loading the file gives back an equal policy.
    """
    path = Path(path)
    fmt = _format_of(path)
    text = dumps_policy(load_policy(policy), fmt)
    path.write_text(text, encoding="utf-8")
    return path
