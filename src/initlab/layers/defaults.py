"""Torch's default init of one parameter, as data: what a layer's ``reset_parameters`` draws.

A :class:`TorchInit` names the draw; :func:`torch_draw` turns it and the parameter's fans into a
distribution with exact bounds, using torch's own arithmetic so that the ``torch_default`` scheme
is bit-identical to a freshly built layer:

* ``kaiming_uniform_sqrt5``: ``kaiming_uniform_(a=sqrt(5))`` on torch's shape-rule fan_in,
  i.e. ``U(±sqrt(3)·gain/sqrt(fan_in))`` with ``gain = sqrt(2 / (1 + 5))`` (Linear, Conv weights);
* ``uniform_fan_in``: ``U(±1/sqrt(fan_in))`` on torch's fan_in, bound 0 when fan_in is 0 (their
  biases);
* ``uniform_attr:NAME``: ``U(±1/sqrt(attrs[NAME]))``, bound 0 when it is 0 (Bilinear
  ``in1_features``, RNN ``hidden_size``);
* ``xavier_uniform`` / ``xavier_normal``: on torch's shape-rule fans (MultiheadAttention);
* ``normal:STD``: ``N(0, STD)`` (Embedding: ``normal:1.0``);
* ``constant:VALUE`` and ``constant_attr:NAME`` (norm scale 1, shift 0; PReLU's ``init``);
* ``zeros``.

The text form (``str(TorchInit(...))``) is what :func:`initlab.compute_fans` records in
``Fans.attrs["torch_init"]``, so a report's fans carry their default across processes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from torch.nn.init import calculate_gain

from ..fans import Fans

__all__ = ["TORCH_INIT_KINDS", "Draw", "TorchInit", "torch_draw"]

#: a draw: ``("uniform", low, high)``, ``("normal", mean, std)`` or ``("constant", value, 0)``
Draw = tuple[Literal["uniform", "normal", "constant"], float, float]

#: kind -> what its argument is (None: takes none)
TORCH_INIT_KINDS: dict[str, str | None] = {
    "kaiming_uniform_sqrt5": None,
    "uniform_fan_in": None,
    "uniform_attr": "attribute name",
    "xavier_uniform": None,
    "xavier_normal": None,
    "normal": "std",
    "constant": "value",
    "constant_attr": "attribute name",
    "zeros": None,
}


@dataclasses.dataclass(frozen=True)
class TorchInit:
    """What torch's ``reset_parameters`` draws for one parameter (see the module docstring).

    Args:
        kind: one of :data:`TORCH_INIT_KINDS`.
        arg: the kind's argument: a number for ``normal``/``constant``, an attribute name of
            the parameter's fans for ``uniform_attr``/``constant_attr``, else None.

    Example:
        >>> str(TorchInit("uniform_attr", "hidden_size"))
        'uniform_attr:hidden_size'
        >>> TorchInit.parse("constant:1.0")
        TorchInit(kind='constant', arg=1.0)
    """

    kind: str
    arg: float | str | None = None

    def __post_init__(self) -> None:
        if self.kind not in TORCH_INIT_KINDS:
            raise ValueError(
                f"unknown torch init kind {self.kind!r}; use one of {', '.join(TORCH_INIT_KINDS)}"
            )
        want = TORCH_INIT_KINDS[self.kind]
        if want is None and self.arg is not None:
            raise ValueError(f"torch init {self.kind!r} takes no argument, got {self.arg!r}")
        if want == "attribute name" and not (isinstance(self.arg, str) and self.arg):
            raise ValueError(f"torch init {self.kind!r} needs an attribute name, got {self.arg!r}")
        if want in ("std", "value"):
            if isinstance(self.arg, bool) or not isinstance(self.arg, (int, float)):
                raise ValueError(
                    f"torch init {self.kind!r} needs a number ({want}), got {self.arg!r}"
                )
            object.__setattr__(self, "arg", float(self.arg))

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"

    @classmethod
    def parse(cls, text: str) -> TorchInit:
        """The :class:`TorchInit` whose ``str`` is ``text`` (``"zeros"``, ``"normal:1.0"``...)."""
        kind, sep, arg = str(text).partition(":")
        if not sep:
            return cls(kind)
        if TORCH_INIT_KINDS.get(kind) in ("std", "value"):
            try:
                return cls(kind, float(arg))
            except ValueError:
                raise ValueError(f"torch init {text!r}: {arg!r} is not a number") from None
        return cls(kind, arg)


def _kaiming_uniform_a_sqrt5(fan: int) -> float:
    """torch.nn.init.kaiming_uniform_(a=sqrt(5)) bound, with torch's exact arithmetic."""
    gain = calculate_gain("leaky_relu", math.sqrt(5))
    std = gain / math.sqrt(fan)
    return math.sqrt(3.0) * std


def _xavier_std(fan_in: int, fan_out: int) -> float:
    """The std of torch.nn.init.xavier_uniform_/xavier_normal_ (same expression as torch)."""
    return 1.0 * math.sqrt(2.0 / float(fan_in + fan_out))


def _torch_fans(fans: Fans) -> tuple[int, int]:
    if fans.torch_fan_in is None or fans.torch_fan_out is None:
        raise ValueError(
            f"torch_default: fans of {fans.layer}.{fans.param} carry no torch_fan_in/"
            "torch_fan_out; pass fans=initlab.compute_fans(module, name)"
        )
    return fans.torch_fan_in, fans.torch_fan_out


def torch_draw(init: TorchInit, fans: Fans) -> Draw:
    """The distribution ``init`` draws from for the parameter described by ``fans``.

    Args:
        init: the parameter's default (``TorchInit.parse(fans.attr("torch_init"))``).
        fans: the parameter's layer-aware fans (torch's shape-rule fans and attrs are read).

    Returns:
        ``("uniform", low, high)``, ``("normal", mean, std)`` or ``("constant", value, 0.0)``.

    Example:
        >>> torch_draw(TorchInit("uniform_fan_in"), Fans(16, 4, torch_fan_in=16, torch_fan_out=4))
        ('uniform', -0.25, 0.25)
    """
    kind, arg = init.kind, init.arg
    if kind == "kaiming_uniform_sqrt5":
        fan_in, _ = _torch_fans(fans)
        if fan_in == 0:
            return ("constant", 0.0, 0.0)  # torch: zero-element tensor, a no-op
        b = _kaiming_uniform_a_sqrt5(fan_in)
        return ("uniform", -b, b)
    if kind == "uniform_fan_in":
        fan_in, _ = _torch_fans(fans)
        b = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        return ("uniform", -b, b)
    if kind == "uniform_attr":
        n = int(fans.attr(str(arg), 0))
        b = 1.0 / math.sqrt(n) if n > 0 else 0  # as torch's RNNs, U(0, 0) for a size of 0
        return ("uniform", -b, b)
    if kind == "xavier_uniform":
        a = math.sqrt(3.0) * _xavier_std(*_torch_fans(fans))
        return ("uniform", -a, a)
    if kind == "xavier_normal":
        return ("normal", 0.0, _xavier_std(*_torch_fans(fans)))
    if kind == "normal":
        return ("normal", 0.0, float(arg))  # type: ignore[arg-type]
    if kind == "constant":
        return ("constant", float(arg), 0.0)  # type: ignore[arg-type]
    if kind == "constant_attr":
        return ("constant", float(fans.attr(str(arg))), 0.0)
    return ("constant", 0.0, 0.0)  # zeros
