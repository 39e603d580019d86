"""No import cycles: every initlab module imports on its own, and the graph of initlab's
imports (all of them: top level, inside functions, under TYPE_CHECKING) has no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "initlab"


def module_names() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module of initlab."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the initlab modules it imports. ``from .pkg import name`` is an edge to the
    submodule ``pkg.name`` when there is one, else to ``pkg`` (its __init__)."""
    mods = module_names()
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    deps.add(sub if sub in mods else mod)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (a path that comes back to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert (
        "initlab.execute.executor" in graph and "initlab.plan" in graph["initlab.execute.executor"]
    )
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "initlab"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from ..a import f\n")  # fmt: skip
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    graph = import_graph()
    assert graph["initlab.a"] == {"initlab.sub.b"} and graph["initlab.sub.b"] == {"initlab.a"}
    assert find_cycle(graph) == ["initlab.a", "initlab.sub.b", "initlab.a"]


# Each module is imported by a child forked from a runner that has imported torch and numpy
# only: a fresh initlab every time, without paying torch's import per module.
RUNNER = """
import importlib, os, sys
import click, numpy, rich.console, rich.table, torch, torch.func, yaml  # third-party
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as e:
            print(f"{name}: {type(e).__name__}: {e}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
sys.exit(1 if failed else 0)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_on_its_own() -> None:
    names = [n for n in module_names() if not n.endswith("__main__")]
    halves = [names[0::2], names[1::2]]
    env_path = str(SRC)
    procs = [
        subprocess.Popen([sys.executable, "-c", RUNNER, *half], stdout=subprocess.PIPE,
                         text=True, env={**__import__("os").environ, "PYTHONPATH": env_path})
        for half in halves
    ]  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)


def test_initlab_never_imports_transformers_itself() -> None:
    """The transformers registry entries and presets are lazy: planning, presets and zoo models
    leave transformers unimported until the user (or an ``hf:`` spec) imports it."""
    code = (
        "import sys, initlab; from torch import nn; "
        "initlab.initialize(nn.Linear(3, 3), 'kaiming'); initlab.build_model('mlp'); "
        "initlab.plan(nn.Linear(2, 2), 'gpt2:n_layers=2'); initlab.list_presets(); "
        "assert 'transformers' not in sys.modules, 'transformers was imported'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


#: heavy libraries a comparison must not import before it trains (plots and reports import
#: matplotlib and plotly after training; the lab steps without torch.optim, whose first step
#: imports torch._dynamo, torch._inductor and sympy)
HEAVY = ("matplotlib", "sklearn", "scipy", "plotly", "pandas", "PIL", "transformers", "sympy",
         "torch._dynamo", "torch._inductor")  # fmt: skip

STARTUP = """
import sys
HEAVY = {heavy!r}
def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)
import initlab, initlab.lab, initlab.lab.trainer, initlab.cli.compare
from initlab.lab import compare, load_dataset
assert not loaded(), f"importing initlab.lab / the compare command loads {{loaded()}}"
load_dataset("digits")
assert not loaded(), f"loading digits loads {{loaded()}}"
class FirstStep(Exception):
    pass
def progress(advance, total):
    raise FirstStep(loaded())
try:
    compare("mlp:widths=8", "digits", ["xavier", "kaiming"], seeds=1, epochs=1, progress=progress)
except FirstStep as e:
    first = e.args[0]
assert not first, f"a comparison up to its first step loads {{first}}"
print("ok", first)
"""


def test_start_up_imports_no_heavy_library() -> None:
    """Importing the lab and the compare command, loading digits, and a comparison up to its
    first training step import none of :data:`HEAVY`, checked by module presence in a fresh
    process."""
    code = STARTUP.format(heavy=HEAVY)
    env = {**__import__("os").environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("ok"), res.stdout
