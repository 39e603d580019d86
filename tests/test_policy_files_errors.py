"""Policy files: every error is one line naming the file, the line and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from initlab import PolicyError
from initlab.specs import load_policy

FORMATS = ("yaml", "toml", "json")

# the same policy in each format, with a bool where a number belongs, on line 4
BOOL_STD = {
    "yaml": "name: p\nrules:\n  - scheme: zeros\n  - scheme: {name: normal, std: true}\n",
    "toml": 'name = "p"\n[[rules]]\nscheme = "zeros"\n[[rules]]\n'
    'scheme = {name = "normal", std = true}\n',
    "json": '{"name": "p",\n "rules": [\n  {"scheme": "zeros"},\n'
    '  {"scheme": {"name": "normal", "std": true}}\n]}\n',
}
BOOL_LINE = {"yaml": 4, "toml": 5, "json": 4}


def _err(path: Path) -> PolicyError:
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    assert "\n" not in str(e.value)
    return e.value


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bool_is_not_a_number(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / f"p.{fmt}"
    p.write_text(BOOL_STD[fmt])
    e = _err(p)
    assert (e.file, e.line, e.path) == (str(p), BOOL_LINE[fmt], "rules[1].scheme.std")
    assert str(e) == (
        f"{p}, line {BOOL_LINE[fmt]}: rules[1].scheme.std: must be a number, got True "
        "(a bool is not a number; write e.g. 1.0)"
    )


def test_bools_stay_valid_where_a_bool_belongs(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("rules:\n  - scheme: {name: custom, fn: 'math:sqrt', per_block: true}\n")
    assert load_policy(p).rules[0].scheme.per_block is True
    with pytest.raises(PolicyError, match="must be a number"):
        load_policy({"rules": [{"scheme": "normal", "params": {"std": False}}]})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", ["", "  \n\n", "# only a comment\n", "{}"])
def test_empty_files_are_one_error_in_every_format(tmp_path: Path, fmt: str, text: str) -> None:
    if fmt == "json" and text.startswith("#"):
        text = "\n"  # JSON has no comments
    if fmt == "toml" and text == "{}":
        text = "# nothing\n"
    p = tmp_path / f"p.{fmt}"
    p.write_text(text)
    e = _err(p)
    assert e.file == str(p)
    assert "policy file is empty" in e.message or "policy file has no content" in e.message
    assert "rules" in e.message


CASES = {  # (text, line, key path) per format: unknown keys, bad values, nested params
    "yaml": [
        ("rules:\n  - scheme: zeros\n    parm: weight\n", 2, "rules[0]"),
        ("name: p\nrules:\n  - scheme: normal\n    params:\n      std: -1\n", 5,
         "rules[0].params.std"),
        ("rules: []\nunmatched: sometimes\n", 2, "unmatched"),
        ("rules:\n  - scheme: zeros\n    ndim: [2, x]\n", 3, "rules[0].ndim"),
    ],
    "toml": [
        ('unmatched = "leave"\n\n[[rules]]\nscheme = "zeros"\nndim = "x"\n', 5, "rules[0].ndim"),
        ('[[rules]]\nscheme = "zeros"\n[[rules]]\nscheme = "normal"\nparams = {std = -1}\n', 5,
         "rules[1].params.std"),
        ('rules = []\nunmatched = "sometimes"\n', 2, "unmatched"),
    ],
    "json": [
        ('{\n "rules": [\n  {"scheme": "zeros"},\n  {"scheme": "normal",\n'
         '   "params": {"std": -1}}\n ]\n}\n',
         5, "rules[1].params.std"),
        ('{"rules": [],\n "unmatched": "sometimes"}\n', 2, "unmatched"),
        ('{"rules": [\n {"scheme": "zeros"},\n {"scheme": "kaimin_normal"}\n]}', 3,
         "rules[1].scheme"),
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "text", "line", "path"), [(f, *case) for f, cases in CASES.items() for case in cases]
)
def test_content_errors_name_file_and_line(
    tmp_path: Path, fmt: str, text: str, line: int, path: str
) -> None:
    p = tmp_path / f"p.{fmt}"
    p.write_text(text)
    e = _err(p)
    assert (e.file, e.line) == (str(p), line), str(e)
    assert (e.path or "").startswith(path), str(e)
    assert str(e).startswith(f"{p}, line {line}: ")


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_bytes(b"rules:\n  - scheme: \xff\n")
    e = _err(p)
    assert e.file == str(p) and "not UTF-8" in e.message
    e = _err(tmp_path / "missing.json")
    assert e.file == str(tmp_path / "missing.json") and "no such policy file" in e.message


def test_a_rule_takes_a_scheme_spec_in_every_format(tmp_path: Path) -> None:
    texts = {
        "yaml": "rules:\n  - scheme: kaiming_normal:mode=fan_out\n",
        "toml": '[[rules]]\nscheme = "kaiming_normal:mode=fan_out"\n',
        "json": '{"rules": [{"scheme": "kaiming_normal:mode=fan_out"}]}',
    }
    for fmt, text in texts.items():
        p = tmp_path / f"p.{fmt}"
        p.write_text(text)
        assert load_policy(p).rules[0].scheme.to_config()["mode"] == "fan_out"
    p = tmp_path / "bad.yaml"
    p.write_text("name: p\nrules:\n  - scheme: kaiming_normal:mdoe=fan_out\n")
    e = _err(p)
    assert (e.line, e.path) == (3, "rules[0].scheme.mdoe") and "did you mean 'mode'" in e.message
