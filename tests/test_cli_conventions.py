"""The command line's shared conventions: lazy --help, one flag per concept, one-line errors."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from initlab.cli import COMMANDS, main
from initlab.policy import list_presets
from initlab.schemes import list_schemes

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_matplotlib(flag: str) -> None:
    code = (
        "import sys\nfrom initlab.cli import main\n"
        f"try:\n    main([{flag!r}])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'rich') if m in sys.modules))\n"
    )
    res = _python(code, "-X", "importtime")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "matplotlib")}
    if flag == "--help":
        for name, (_, _, help_) in COMMANDS.items():
            assert f"  {name}" in res.stdout and help_ in res.stdout


def test_import_initlab_is_lazy_and_complete() -> None:
    res = _python(
        "import sys, initlab\nassert 'torch' not in sys.modules\n"
        "import initlab.plan, initlab.gain, initlab.execute.meta\n"
        "assert all(callable(f) for f in (initlab.plan, initlab.gain, initlab.materialize))\n"
        "assert all(getattr(initlab, n) is not None for n in initlab.__all__)\n"
        "assert initlab.init.__name__ == 'initlab.init' and 'Policy' in dir(initlab)\n"
    )
    assert res.returncode == 0, res.stderr


def test_type_checking_imports_list_the_lazy_exports() -> None:
    import ast

    import initlab

    tree = ast.parse(Path(initlab.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If))
    names = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom)
             for a in n.names}  # fmt: skip
    assert names == set(initlab._EXPORTS) == set(initlab.__all__) - {"__version__"}


def test_listed_help_is_each_commands_own_first_line() -> None:
    for name, (module, attr, help_) in COMMANDS.items():
        cmd = getattr(importlib.import_module(f"initlab.cli.{module}"), attr)
        assert cmd.name == name
        assert inspect.cleandoc(cmd.help or "").splitlines()[0] == help_


def _commands() -> list[click.Command]:
    return [main.get_command(click.Context(main), name) for name in COMMANDS]  # type: ignore[misc]


def test_one_flag_per_concept() -> None:
    expected = {
        "model": ["-m", "--model"],
        "data": ["-d", "--data"],
        "policy": ["-p", "--policy"],
        "out": ["-o", "--out"],
        "as_json": ["--json"],
        "json_out": ["--json-out"],
        "batch_size": ["--batch-size"],
    }
    seen = set()
    for cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name in expected and not p.hidden:
                if p.name == "out" and cmd.name == "init":
                    assert p.opts == ["-o", "--out"]
                assert sorted(p.opts) == sorted(expected[p.name]), (cmd.name, p.opts)
                seen.add(p.name)
            assert not (isinstance(p, click.Option) and "--dataset" in p.opts and not p.hidden)
    assert seen == set(expected)
    assert all(any(p.name == "as_json" for p in c.params) for c in _commands())


def test_plan_takes_the_zoo_and_model_as_argument_or_option(tmp_path: Path) -> None:
    a = run("plan", "mlp:widths=8", "-p", "kaiming", "--json")
    b = run("plan", "-m", "mlp:widths=8", "--policy", "kaiming", "--json")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output) == json.loads(b.output)
    rows = json.loads(run("plan", "mlp", "-p", "xavier-uniform", "--json").output)["parameters"]
    assert {r["scheme"]["name"] for r in rows} == {"xavier_uniform"} and len(rows) == 6
    res = run("plan", "mlp", "-m", "cnn", "-p", "kaiming")
    assert res.exit_code == 2 and "two models given" in res.output
    res = run("plan", "-p", "kaiming")
    assert res.exit_code == 2 and "no model given" in res.output


def test_presets_listing() -> None:
    res = run("presets")
    assert res.exit_code == 0, res.output
    for name in list_presets():
        assert name in res.output
    assert "seeds_orthogonal -> orthogonal_weights" in res.output
    rows = json.loads(run("presets", "--json").output)
    assert [r["name"] for r in rows] == list_presets()
    assert all(r["summary"] and r["source"] and r["source"] != "-" for r in rows)
    assert next(r for r in rows if r["name"] == "gpt2")["arguments"] == [
        "n_layers",
        "std",
        "residual",
    ]


def test_schemes_listing_has_a_formula_or_description_for_each() -> None:
    rows = json.loads(run("schemes", "--json").output)["schemes"]
    assert {r["name"] for r in rows} == {c.name for c in list_schemes()}
    assert all(r["formula"].strip() for r in rows)


def test_deprecated_preset_warns_in_one_line() -> None:
    res = run("plan", "mlp", "-p", "seeds-orthogonal", "--json")
    assert res.exit_code == 0
    first = res.output.splitlines()[0]
    assert first == (
        "initlab: warning: preset 'seeds-orthogonal' is deprecated and will be removed in the "
        "next release; use 'orthogonal_weights'"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "/nonexistent/folder"], "no runs.jsonl in /nonexistent/folder"),
        (["plan", "mlp", "-p", "kaimng"], "unknown policy 'kaimng'"),
        (["plan", "nope:f", "-p", "kaiming"], "cannot import module 'nope'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["plan", "mlp"], "Missing option '-p' / '--policy'"),
        (["compare", "-o", "/proc/initlab-x"], "--out /proc/initlab-x: cannot write in /proc/"),
        # init checks --out before building or filling anything: a .pt file or a shards folder
        (["init", "-m", "mlp", "-p", "kaiming", "-o", "/proc/x.pt"], "--out /proc/x.pt: cannot"),
        (["init", "-m", "mlp", "-p", "kaiming", "-o", "/proc/sh/"], "--out /proc/sh: cannot write"),
        (["gain", "nope"], "nope"),
    ],
)
def test_every_error_is_one_line_with_exit_2(args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("initlab: error: ") and message in res.output, res.output
    assert res.output.strip().count("\n") == 0, res.output


def test_os_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "runs.jsonl").write_bytes(b"\xff\xfe\n")
    res = _python(f"from initlab.cli import main\nmain(['report', {str(folder)!r}])")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"initlab: error: {folder / 'runs.jsonl'}: none of its 1 lines")
    assert res.stderr.count("\n") == 1
    res = _python(f"from initlab.cli import main\nmain(['--debug', 'report', {str(folder)!r}])")
    assert res.returncode == 1 and "Traceback (most recent call last)" in res.stderr


def test_compare_old_flags_still_work_with_a_warning(tmp_path: Path) -> None:
    args = ["compare", "-m", "mlp:widths=4", "--dataset", "synthetic:n=60,dim=4,classes=2",
            "-s", "zeros", "--seeds", "1", "--epochs", "1", "--sequential", "--json",
            "-o", str(tmp_path / "c")]  # fmt: skip
    res = run(*args)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert sorted(x for x in lines if x.startswith("initlab: warning: option")) == [
        "initlab: warning: option --dataset is deprecated; use --data",
        "initlab: warning: option -s is deprecated; use --policy",
    ]
    data = json.loads("\n".join(x for x in lines if not x.startswith("initlab: ")))
    assert [s["entry"] for s in data["stats"]] == ["zeros"]
