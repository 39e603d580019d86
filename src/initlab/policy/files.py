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
file, the line and the key path: YAML from the node's mark, JSON from the decoder's positions,
TOML from tomllib's message or a search for the key. An empty file is an error in every format.
Policy strings (presets, schemes) are read by :func:`initlab.specs.load_policy`.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from .errors import PolicyError
from .policy import Policy

__all__ = ["FORMATS", "dumps_policy", "loads_policy", "read_policy_file", "save_policy"]

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}


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
    return PolicyError(f"invalid {fmt.upper()}: {' '.join(message.split())}", line=line)


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


# -- where a key path is in the text ---------------------------------------------------------
_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _tokens(path: str) -> list[str | int]:
    return [int(m[1]) if m[1] else m[2] for m in _TOKEN.finditer(path)]


def _yaml_line(text: str, tokens: list[str | int]) -> int | None:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = None
    for tok in tokens:
        if isinstance(node, yaml.MappingNode) and isinstance(tok, str):
            pair = next(((k, v) for k, v in node.value if k.value == tok), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(tok, int) and tok < len(node.value):
            node = node.value[tok]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _json_positioned(text: str) -> tuple[Any, dict[int, int]]:
    """The data of a JSON text and, by ``id``, the offset where each object and array starts."""
    starts: dict[int, int] = {}
    decoder = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        obj, end = json.decoder.JSONObject(s_and_end, *args)
        starts[id(obj)] = s_and_end[1] - 1
        return obj, end

    def parse_array(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        arr, end = json.decoder.JSONArray(s_and_end, *args)
        starts[id(arr)] = s_and_end[1] - 1
        return arr, end

    decoder.parse_object, decoder.parse_array = parse_object, parse_array  # type: ignore[assignment]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text), starts


def _json_line(text: str, tokens: list[str | int]) -> int | None:
    try:
        data, starts = _json_positioned(text)
    except ValueError:
        return None
    pos = starts.get(id(data))
    for tok in tokens:
        if isinstance(data, dict) and isinstance(tok, str) and tok in data:
            m = re.compile(rf'"{re.escape(tok)}"\s*:').search(text, pos or 0)
            pos = m.start() if m else pos
            data = data[tok]
        elif isinstance(data, list) and isinstance(tok, int) and tok < len(data):
            data = data[tok]
        else:
            break
        pos = starts.get(id(data), pos)
    return None if pos is None else text.count("\n", 0, pos) + 1


def _toml_line(text: str, tokens: list[str | int]) -> int | None:
    pos, hit, i = 0, None, 0
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, int):  # an index into an inline array: stay on the key's line
            i += 1
            continue
        key = re.escape(tok)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if isinstance(nxt, int):  # an array of tables: its (nxt+1)-th [[key]] header
            header = re.compile(rf"^[ \t]*\[\[[ \t]*{key}[ \t]*\]\]", re.M)
            starts = [m.start() for m in header.finditer(text, pos)]
            if nxt < len(starts):
                pos = hit = starts[nxt]
                i += 2
                continue
        assign = rf"(?:^|(?<=[\s{{,]))[\"']?{key}[\"']?[ \t]*="
        m = re.compile(rf"{assign}|^[ \t]*\[[ \t]*{key}[ \t]*\]", re.M).search(text, pos)
        if m is None:
            break
        pos = hit = m.start()
        i += 1
    return None if hit is None else text.count("\n", 0, hit) + 1


def _line_of(text: str, fmt: str, path: str | None) -> int | None:
    """The line (1-based) of the key path ``path`` in a policy file's text, when it is found."""
    if not path:
        return None
    find = {"yaml": _yaml_line, "json": _json_line, "toml": _toml_line}.get(fmt)
    return find(text, _tokens(path)) if find else None


# -- public --------------------------------------------------------------------------------
def loads_policy(text: str, fmt: str = "yaml") -> Policy:
    """A policy from the text of a policy file in format ``fmt`` (yaml, toml or json).

    Args:
        text: the file's text.
        fmt: ``"yaml"``, ``"toml"`` or ``"json"``.

    Returns:
        The policy.

    Raises:
        PolicyError: a syntax error, an empty text, or invalid content; it carries the line
            where one is known.

    Example:
        >>> loads_policy('{"rules": [{"scheme": "zeros"}]}', "json").rules[0].scheme.name
        'zeros'
    """
    if not text.strip():
        raise PolicyError(
            "the policy file is empty; write at least a rules list, e.g. 'rules: [{scheme: zeros}]'"
        )
    data = _parse(text, fmt)
    if data is None or (isinstance(data, Mapping) and not data):
        raise PolicyError(
            "the policy file has no content; write at least a rules list, e.g. "
            "'rules: [{scheme: zeros}]'"
        )
    try:
        return Policy.from_dict(data)
    except PolicyError as e:
        raise PolicyError(e.message, e.path, e.file, _line_of(text, fmt, e.path)) from None


def dumps_policy(policy: Policy, fmt: str = "yaml") -> str:
    """The text of a policy file in format ``fmt`` (yaml, toml or json).

    Args:
        policy: the policy.
        fmt: ``"yaml"``, ``"toml"`` or ``"json"``.

    Returns:
        The file's text; :func:`read_policy_file` of it gives back an equal policy.

    Example:
        >>> import initlab
        >>> pol = initlab.Policy([initlab.Rule("kaiming_normal", param="weight")], name="w")
        >>> print(dumps_policy(pol, "yaml"), end="")
        name: w
        unmatched: leave
        rules:
        - scheme: kaiming_normal
          param: weight
    """
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


def read_policy_file(path: str | os.PathLike[str]) -> Policy:
    """The policy in a ``.yaml``/``.yml``/``.toml``/``.json`` file.

    Args:
        path: the file.

    Returns:
        The policy.

    Raises:
        PolicyError: one line naming the file, the line and the key path where known, and
            the fix (missing or unreadable file, wrong extension, syntax, empty file, content).

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.toml"
        >>> _ = f.write_text('[[rules]]\\nscheme = "zeros"\\n')
        >>> read_policy_file(f).rules[0].scheme.name
        'zeros'
    """
    path = Path(path)
    fmt = _format_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("no such policy file", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise PolicyError(
            f"not UTF-8 text ({e.reason} at byte {e.start})", file=str(path)
        ) from None
    except OSError as e:
        raise PolicyError(
            f"cannot read the policy file: {e.strerror or e}", file=str(path)
        ) from None
    try:
        return loads_policy(text, fmt)
    except PolicyError as e:
        raise e.in_file(str(path)) from None


def save_policy(policy: Policy | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``policy`` (a Policy or a mapping in the file schema) to ``path``, format by extension.

    For a preset or a scheme by name, pass ``initlab.load_policy(name)``.

    Args:
        policy: a :class:`Policy`, or a mapping in the policy file schema.
        path: the file to write; its extension (``.yaml``/``.yml``/``.toml``/``.json``) picks
            the format.

    Returns:
        The path written. Reading the file gives back an equal policy.

    Example:
        >>> import tempfile, initlab
        >>> pol = initlab.Policy([initlab.Rule("kaiming_normal", param="weight")], name="w")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = initlab.save_policy(pol, f"{tmp}/w.toml")
        ...     print(path.name, initlab.load_policy(path) == pol)
        w.toml True
    """
    path = Path(path)
    fmt = _format_of(path)
    text = dumps_policy(Policy.from_dict(policy), fmt)
    path.write_text(text, encoding="utf-8")
    return path
