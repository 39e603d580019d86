"""The ``initlab`` command line: one module per subcommand."""

from __future__ import annotations

import click

from .. import __version__
from .compare import compare_cmd, report_cmd
from .diagnose import diagnose_cmd
from .fans import fans_cmd
from .gain import gain_cmd
from .plan import init_cmd, plan_cmd
from .schemes import schemes_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="initlab")
def main() -> None:
    """initlab: layer-aware, reproducible, measurable initialisation for PyTorch."""


main.add_command(schemes_cmd)
main.add_command(fans_cmd)
main.add_command(gain_cmd)
main.add_command(plan_cmd)
main.add_command(init_cmd)
main.add_command(compare_cmd)
main.add_command(report_cmd)
main.add_command(diagnose_cmd)

__all__ = ["main"]
