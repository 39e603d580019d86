"""The docstrings are part of the test suite.

* Every module of the package has its doctests run (one test per module, so a failure names it).
* Every public function and class of the modules in ``DOCUMENTED`` has a docstring with an
  ``Example`` section holding ``>>>`` lines, and an ``Args:`` section (``Attributes:`` for a
  dataclass) unless it takes no arguments, so the documentation standard cannot regress.

A module's public names are the functions and classes it defines that are listed in its
``__all__``, or, without one, whose names do not start with ``_``. Extend ``DOCUMENTED`` as
modules reach the standard.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import pkgutil

import pytest

import initlab
import initlab.init

MODULES = sorted(m.name for m in pkgutil.walk_packages(initlab.__path__, "initlab."))

# Modules held to the standard, and (for part of a module) only the names listed.
DOCUMENTED: dict[str, tuple[str, ...] | None] = {
    "initlab.init": None,
    "initlab.fans": None,
    "initlab.plan": None,
    "initlab.mup.attach": None,
    "initlab.mup.attention": None,
    "initlab.mup.base": None,
    "initlab.mup.classify": None,
    "initlab.mup.depth": None,
    "initlab.mup.param_groups": None,
    "initlab.mup.parametrization": None,
    "initlab.refs": None,
    "initlab.specs": None,
    "initlab.syntax": None,
    "initlab.execute.buffers": None,
    "initlab.execute.executor": None,
    "initlab.execute.fill": None,
    "initlab.execute.fsdp": None,
    "initlab.execute.inplace": None,
    "initlab.execute.meta": None,
    "initlab.execute.checkpoint": None,
    "initlab.execute.shard": None,
    "initlab.layers.compute": None,
    "initlab.layers.defaults": None,
    "initlab.layers.registry": None,
    "initlab.layers.spec": None,
    "initlab.layers.weights": None,
    "initlab.policy.expressions": None,
    "initlab.policy.files": None,
    "initlab.policy.quantities": None,
    "initlab.policy.presets": None,
    "initlab.gain": None,
    "initlab.sampling": None,
    "initlab.rng": None,
    "initlab.report": None,
    "initlab.streams.bits": None,
    "initlab.streams.chunks": None,
    "initlab.streams.kernels": None,
    "initlab.streams.keys": None,
    "initlab.streams.pool": None,
    "initlab.streams.stream": None,
    "initlab.streams.window": None,
    "initlab.diagnostics.hooks": None,
    "initlab.diagnostics.lsuv": None,
    "initlab.diagnostics.plots": None,
    "initlab.diagnostics.records": None,
    "initlab.diagnostics.rendering": None,
    "initlab.diagnostics.scheme_comparison": None,
    "initlab.policy.policy": None,
    "initlab.policy.errors": None,
    "initlab.policy.patterns": None,
    "initlab.policy.rules": None,
    "initlab.schemes.base": None,
    "initlab.schemes.basic": None,
    "initlab.schemes.custom": None,
    "initlab.schemes.orthogonal": None,
    "initlab.schemes.structured": None,
    "initlab.schemes.variance": None,
    "initlab.sources.inputs": None,
    # lab: the comparison, its statistics, verdict, figures and reports in full; of the rest,
    # what initlab.lab re-exports (lab/results and trainer are still to reach the standard)
    "initlab.lab.data": ("load_dataset",),
    "initlab.lab.data.core": ("Dataset", "DatasetError"),
    "initlab.lab.data.split": None,
    "initlab.lab.entries": ("Entry", "EntryError", "describe_entry", "resolve_entry"),
    "initlab.lab.experiment": None,
    "initlab.lab.interactive": None,
    "initlab.lab.optim": None,
    "initlab.lab.palette": None,
    "initlab.lab.plots": None,
    "initlab.lab.report_pages": None,
    "initlab.lab.stats": None,
    "initlab.lab.verdict": None,
    "initlab.lab.coordcheck": None,
    "initlab.lab.lrsweep": None,
    "initlab.lab.width": None,
    "initlab.lab.width_plots": None,
    "initlab.lab.data.text": None,
    "initlab.zoo": ("ModelError", "build_zoo_model", "make_activation"),
}

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {name}"


def public_objects(name: str) -> dict[str, object]:
    """The public functions and classes defined in module ``name`` (see the module doc)."""
    module = importlib.import_module(name)
    only = DOCUMENTED.get(name)
    if only is not None:
        return {n: getattr(module, n) for n in only}
    names = getattr(module, "__all__", None)
    return {
        n: o
        for n, o in vars(module).items()
        if (inspect.isfunction(o) or inspect.isclass(o))
        and o.__module__ == name
        and (n in names if names is not None else not n.startswith("_"))
    }


def _takes_arguments(obj: object) -> bool:
    if getattr(obj, "_is_protocol", False):
        return False  # a typing.Protocol is never constructed
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False  # no Python signature (a builtin base such as dict): nothing to list
    return any(p.name not in ("self", "cls") for p in params)


def missing_sections(obj: object) -> list[str]:
    """What the docstring of ``obj`` lacks: ``Example``, ``Args``."""
    doc = inspect.getdoc(obj) or ""
    missing = []
    if "Example" not in doc or ">>>" not in doc:
        missing.append("an Example with >>>")
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return missing  # an exception's argument is its message
    args = "Args:" in doc or (dataclasses.is_dataclass(obj) and "Attributes:" in doc)
    if _takes_arguments(obj) and not args:
        missing.append("an Args: section")
    return missing


def test_documented_modules_exist() -> None:
    assert set(DOCUMENTED) <= set(MODULES)
    for name in DOCUMENTED:
        assert public_objects(name), f"{name} has no public functions or classes to check"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_public_api_is_documented(name: str) -> None:
    gaps = {n: m for n, o in public_objects(name).items() if (m := missing_sections(o))}
    assert not gaps, f"{name}: docstrings lack " + "; ".join(
        f"{n}: {', '.join(m)}" for n, m in sorted(gaps.items())
    )


def test_completeness_check_catches_gaps() -> None:
    def bare(x: int) -> int:
        """One line."""
        return x

    def no_args() -> None:
        """Nothing.

        Example:
            >>> no_args()
        """

    assert missing_sections(bare) == ["an Example with >>>", "an Args: section"]
    assert missing_sections(no_args) == []


def _api_objects() -> dict[str, object]:
    """Every function and class in ``initlab.__all__`` and ``initlab.init.__all__``."""
    found = {f"initlab.{n}": getattr(initlab, n) for n in initlab.__all__}
    found.update({f"initlab.init.{n}": getattr(initlab.init, n) for n in initlab.init.__all__})
    return {n: o for n, o in found.items() if inspect.isfunction(o) or inspect.isclass(o)}


def test_public_api_names_are_all_documented() -> None:
    objects = _api_objects()
    assert len(objects) > 50, "the public API lost its names"
    gaps = {n: m for n, o in objects.items() if (m := missing_sections(o))}
    assert not gaps, "docstrings lack " + "; ".join(
        f"{n}: {', '.join(m)}" for n, m in sorted(gaps.items())
    )
