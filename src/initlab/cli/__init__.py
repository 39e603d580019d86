"""The ``initlab`` command line: one module per subcommand, loaded only when it runs.

``initlab --help`` and ``initlab --version`` import neither torch nor matplotlib: the group
lists the subcommands from :data:`COMMANDS` (name -> module, command, one-line help) and
imports a subcommand's module only to run it or show its own help.

Every error is one line on stderr, ``initlab: error: <what is wrong and the fix>``, with exit
code 2; ``initlab --debug <command> ...`` shows the traceback instead. Warnings are one line
too, ``initlab: warning: ...``.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__

__all__ = ["COMMANDS", "main"]

#: subcommand -> (module under initlab.cli, command object's name, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "schemes": ("schemes", "schemes_cmd", "List every scheme and lab entry with its formula."),
    "presets": ("presets", "presets_cmd", "List the presets: what each does, and its source."),
    "fans": ("fans", "fans_cmd", "Fans of a layer's parameters beside torch's rule."),
    "gain": ("gain", "gain_cmd", "Gain of an activation: torch's and second-moment."),
    "plan": ("plan", "plan_cmd", "Show which rule would set every parameter of a model."),
    "init": ("plan", "init_cmd", "Initialise a model by a policy and save it."),
    "mup": ("mup", "mup_cmd", "The muP table of a model against a base: kinds, stds, LRs."),
    "compare": ("compare", "compare_cmd", "Train one network under many init schemes and seeds."),
    "report": ("compare", "report_cmd", "Rebuild a compare folder's tables, curves and reports."),
    "diagnose": (
        "diagnose",
        "diagnose_cmd",
        "Activation/gradient propagation at init by scheme.",
    ),
    "coordcheck": (
        "coordcheck",
        "coordcheck_cmd",
        "Coordinate sizes against width under SP and muP, with slopes.",
    ),
    "lrsweep": (
        "lrsweep",
        "lrsweep_cmd",
        "Loss vs learning rate per width under SP and muP (TP5 Fig. 1).",
    ),
}

EXIT_ERROR = 2


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's LazyGroup pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"{__name__}.{entry[0]}")
        return getattr(module, entry[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             **extra: Any) -> Any:  # fmt: skip
        """Run the command line; errors become one line and exit code 2 (see module doc)."""
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv[: next((i for i, a in enumerate(argv) if a in COMMANDS), None)]
        extra.pop("standalone_mode", None)
        with warnings.catch_warnings():
            _one_line_warnings()
            try:
                code = super().main(argv, "initlab", standalone_mode=False, **extra)
            except click.exceptions.Exit as e:
                sys.exit(e.exit_code)
            except click.exceptions.Abort:
                _fail("aborted")
            except click.UsageError as e:
                hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
                _fail(f"{_first_line(e.format_message())}{hint}")
            except click.ClickException as e:
                _fail(_first_line(e.format_message()))
            except Exception as e:
                if debug:
                    raise
                known = isinstance(e, (ValueError, OSError, RuntimeError, KeyError))
                what = _first_line(str(e)) or type(e).__name__
                _fail(
                    what if known else f"{type(e).__name__}: {what} (--debug shows the traceback)"
                )
        sys.exit(code if isinstance(code, int) else 0)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _fail(message: str) -> None:
    click.echo(f"initlab: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _one_line_warnings() -> None:
    """Warnings as ``initlab: warning: ...`` lines; our deprecations always shown."""

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:  # fmt: skip
        click.echo(f"initlab: warning: {_first_line(str(message))}", err=True)

    warnings.showwarning = show
    warnings.filterwarnings(
        "default", message=r"(preset|option) .* is deprecated", category=DeprecationWarning
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="initlab")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """initlab: layer-aware, reproducible, measurable initialisation for PyTorch."""
