"""The flags every subcommand shares, one spelling each, and the checks made before any work.

* model ``-m/--model``, data set ``-d/--data``, policy or scheme ``-p/--policy``, output
  ``-o/--out``, ``--seed``/``--seeds``, ``--batch-size``;
* ``--json``: machine-readable output on stdout; ``--json-out FILE``: the same into a file;
* renamed flags stay as hidden, deprecated aliases (:func:`deprecated_alias`), which warn
  with the new name;
* :func:`check_out_dir` / :func:`check_out_file`: an unusable ``--out`` fails before any work.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

__all__ = [
    "Command",
    "check_out_dir",
    "check_out_file",
    "data_option",
    "deprecated_alias",
    "json_option",
    "json_out_option",
    "model_option",
    "out_option",
    "policy_option",
]

F = TypeVar("F", bound=Callable[..., Any])
_ALIASES = "initlab.aliases"


class Command(click.Command):
    """A subcommand whose hidden deprecated aliases fill in their new option's value."""

    def invoke(self, ctx: click.Context) -> Any:
        for new, (old, value) in ctx.meta.pop(_ALIASES, {}).items():
            source = ctx.get_parameter_source(new)
            if source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
                raise click.UsageError(f"{old} and its new name were both given; keep the new one")
            ctx.params[new] = value
        return super().invoke(ctx)


def deprecated_alias(old: str, new: str, new_flag: str, **kwargs: Any) -> Callable[[F], F]:
    """A hidden option ``old`` that sets parameter ``new`` and warns to use ``new_flag``.

    Args:
        old: the old flag (``"--batch"``).
        new: the parameter name of the new option (``"batch_size"``).
        new_flag: the new flag, for the warning (``"--batch-size"``).
        kwargs: the option's ``type`` and the like, as the new option has them.

    Returns:
        The option decorator (the command must use ``cls=Command``).
    """

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == ():
            return
        warnings.warn(
            f"option {old} is deprecated; use {new_flag}", DeprecationWarning, stacklevel=2
        )
        ctx.meta.setdefault(_ALIASES, {})[new] = (old, value)

    return click.option(
        old, hidden=True, expose_value=False, default=None, callback=store, **kwargs
    )


def model_option(**kwargs: Any) -> Callable[[F], F]:
    """``-m/--model``: a model spec (the zoo, ``pkg.mod:factory``, ``file.py:factory``)."""
    kwargs.setdefault(
        "help",
        "mlp[:widths=256-128,activation=relu], cnn[:batchnorm=true], "
        "deep[:depth=30,activation=tanh], resmlp, or pkg.module:factory / file.py:factory.",
    )
    return click.option("-m", "--model", "model", **kwargs)


def data_option(**kwargs: Any) -> Callable[[F], F]:
    """``-d/--data``: a data set spec."""
    kwargs.setdefault(
        "help",
        "digits, synthetic[:n=2000,dim=32,classes=4], mnist:PATH, fashion_mnist:PATH, "
        "cifar10:PATH (local files; nothing is downloaded).",
    )
    return click.option("-d", "--data", "data", **kwargs)


def policy_option(**kwargs: Any) -> Callable[[F], F]:
    """``-p/--policy``: a preset, a scheme (a one-rule policy) or a policy file."""
    kwargs.setdefault(
        "help",
        "A preset (kaiming, gpt2:n_layers=12; see 'initlab presets'), a scheme "
        "(xavier_uniform, normal:std=0.02; see 'initlab schemes') or a policy file "
        "(.yaml/.yml/.toml/.json).",
    )
    return click.option("-p", "--policy", "policy", **kwargs)


def out_option(**kwargs: Any) -> Callable[[F], F]:
    """``-o/--out``: where results go."""
    return click.option("-o", "--out", "out", **kwargs)


def json_option(what: str = "the result") -> Callable[[F], F]:
    """``--json``: machine-readable output on stdout instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


def json_out_option(what: str = "the result") -> Callable[[F], F]:
    """``--json-out FILE``: the JSON written to a file."""
    return click.option(
        "--json-out",
        "json_out",
        type=click.Path(dir_okay=False),
        default=None,
        help=f"Write {what} as JSON to this file.",
    )


def _writable_dir(folder: Path, flag: str, shown: Path | None = None) -> None:
    """Create ``folder`` (and parents) and a file in it, then remove what this created.

    ``shown`` is the path the user gave, named in the message (default ``folder``)."""
    shown = folder if shown is None else shown
    created: list[Path] = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise click.UsageError(f"{flag} {shown}: {probe} is a file, not a folder")
    try:
        for d in reversed(created):
            d.mkdir()
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise click.UsageError(
            f"{flag} {shown}: cannot write in {folder} ({e.strerror or e}); choose another place"
        ) from None
    finally:
        for d in created:
            if d.is_dir():
                try:
                    d.rmdir()
                except OSError:
                    break


def check_out_dir(folder: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Fail now, with one line, if ``folder`` cannot become an output folder.

    It must be a folder or not exist yet, under a folder where one can write. Nothing is left
    behind by the check.

    Args:
        folder: the output folder.
        flag: the option's name, for the message.

    Returns:
        ``folder`` as a Path.

    Raises:
        click.UsageError: a file where a folder is meant, or a place one cannot write to.

    Example:
        >>> import tempfile
        >>> check_out_dir(tempfile.mkdtemp()).is_dir()
        True
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{flag} {path} is a file; give a folder")
    _writable_dir(path, flag)
    return path


def check_out_file(file: str | os.PathLike[str], flag: str = "--json-out") -> Path:
    """Fail now, with one line, if ``file`` cannot be written (a folder, or an unwritable place).

    Args:
        file: the output file.
        flag: the option's name, for the message.

    Returns:
        ``file`` as a Path.

    Raises:
        click.UsageError: a folder where a file is meant, or a place one cannot write to.
    """
    path = Path(file)
    if path.is_dir():
        raise click.UsageError(f"{flag} {path} is a folder; give a file name")
    _writable_dir(path.parent, flag, path)
    return path
