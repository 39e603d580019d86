"""References to a user's Python objects: ``package.module:attr`` or ``path/to/file.py:attr``.

Model factories (:func:`initlab.specs.build_model`) and custom value functions
(``get_scheme("custom", fn="pkg.mod:fn")``) are named this way on the command line and in
files.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["RefError", "is_file_ref", "load_ref"]


class RefError(ValueError):
    """A reference that cannot be imported or does not name an attribute (one-line message).

    Example:
        >>> try:
        ...     load_ref("json:nope")
        ... except RefError as e:
        ...     print(type(e).__name__, e)
        RefError 'json' has no attribute 'nope' (from 'json:nope')
    """


def is_file_ref(target: str) -> bool:
    """Whether the part before ``:`` of a reference names a file rather than a module.

    Args:
        target: the part of a reference before ``:``.

    Returns:
        True for a path (ends in ``.py`` or holds a path separator), False for a module name.

    Example:
        >>> is_file_ref("models/net.py"), is_file_ref("torchvision.models")
        (True, False)
    """
    return target.endswith(".py") or "/" in target or "\\" in target


def load_ref(ref: str) -> Any:
    """The object named by ``"package.module:attr"`` or ``"path/to/file.py:attr"``.

    ``attr`` may be dotted (``"pkg.mod:Class.make"``). A file is executed on each call, as a
    module with a private name.

    Args:
        ref: the reference.

    Returns:
        The object (not called).

    Raises:
        RefError: a malformed reference, a missing file, a failing import or a missing
            attribute; the message names the reference.

    Example:
        >>> load_ref("math:sqrt")(4.0)
        2.0
    """
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise RefError(f"{ref!r} must look like 'package.module:name' or 'file.py:name'")
    if is_file_ref(target):
        path = Path(target)
        if not path.is_file():
            raise RefError(f"file {str(path)!r} does not exist (from {ref!r})")
        name = f"_initlab_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise RefError(f"cannot load {str(path)!r} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[name]
            raise RefError(f"importing {str(path)!r} failed: {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise RefError(f"cannot import module {target!r} (from {ref!r}): {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RefError(f"{target!r} has no attribute {attr!r} (from {ref!r})")
        obj = getattr(obj, part)
    return obj
