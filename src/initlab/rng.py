"""Random sources: the one place schemes draw randomness from.

A scheme never calls ``tensor.normal_`` itself; it asks a :class:`RandomSource`. The source
here, :class:`TorchSource`, wraps a ``torch.Generator`` (or torch's global generator when it is
``None``) and draws exactly as ``torch.nn.init`` does, which is what gives the functional
``initlab.init`` API its bit parity with torch. Keyed, counter-based sources (values that depend
on a seed and a parameter's name, not on call order) implement the same protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from .sampling import standard_trunc_normal_


@runtime_checkable
class RandomSource(Protocol):
    """What a scheme may ask for (every fill writes ``t`` in place and returns it), and what
    the executor asks of a source (``addressable``, ``fork``, ``achieved_std``).

    ``uniform_(t, low, high)``, ``normal_(t, mean, std)``, ``trunc_normal_(t, a, b)`` (a standard
    normal conditioned on [a, b], bounds in standard deviations) and ``randperm(n)``.
    :class:`TorchSource` (a ``torch.Generator``) and :class:`initlab.streams.KeyedStream` (values
    keyed by seed and parameter name) implement it; it is ``runtime_checkable``.

    Example:
        >>> isinstance(TorchSource(), RandomSource)
        True
        >>> isinstance(torch.Generator(), RandomSource)  # wrapped by as_source instead
        False
    """

    #: element-addressable: any window of a tensor can be generated alone (a keyed stream);
    #: False for sequential sources (a torch.Generator), which can only fill whole tensors
    addressable: bool

    def fork(self, label: str) -> RandomSource:
        """The source for a sub-step (one block of a packed parameter): an independent child
        derived from ``label`` for a keyed source, the same sequence for a sequential one."""
        ...

    def achieved_std(self, t: Tensor) -> float | None:
        """The std of what the last fill wrote into ``t``, when the source measured it while
        writing (None: not measured, compute it from ``t``)."""
        ...

    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor:
        """Fill ``t`` with U(low, high) values."""
        ...

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor:
        """Fill ``t`` with N(mean, std²) values."""
        ...

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        """Standard normal conditioned on ``[a, b]`` (bounds in standard deviations)."""
        ...

    def randperm(self, n: int) -> Tensor:
        """A random permutation of 0..n-1 (int64)."""
        ...


class TorchSource:
    """Draws from a ``torch.Generator`` (None: the global one) exactly as torch.nn.init does.

    Args:
        generator: the ``torch.Generator``, or None for torch's global generator.

    Example:
        >>> src = TorchSource(torch.Generator().manual_seed(0))
        >>> a = src.uniform_(torch.empty(3), -1.0, 1.0)
        >>> b = torch.empty(3).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(a, b)
        True
    """

    __slots__ = ("generator",)
    addressable = False

    def __init__(self, generator: torch.Generator | None = None) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator

    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor:
        """``t.uniform_(low, high, generator=...)``, as torch.nn.init.uniform_."""
        return t.uniform_(low, high, generator=self.generator)

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor:
        """``t.normal_(mean, std, generator=...)``, as torch.nn.init.normal_."""
        return t.normal_(mean, std, generator=self.generator)

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        """Exact N(0, 1) | [a, b] (:func:`~initlab.sampling.standard_trunc_normal_`)."""
        return standard_trunc_normal_(t, a, b, generator=self.generator)

    def randperm(self, n: int) -> Tensor:
        """``torch.randperm(n)`` from the generator (the global one when None), as torch."""
        if self.generator is None:
            return torch.randperm(n)
        return torch.randperm(n, generator=self.generator, device=self.generator.device)

    def fork(self, label: str) -> TorchSource:
        """The same generator: a sequential source draws sub-steps in order."""
        return self

    def achieved_std(self, t: Tensor) -> float | None:
        """None: a torch.Generator does not measure what it writes."""
        return None

    def __repr__(self) -> str:
        return f"TorchSource({self.generator!r})"


def as_source(generator: torch.Generator | RandomSource | None) -> RandomSource:
    """Accept a torch.Generator, None (global RNG) or any RandomSource.

    Args:
        generator: a ``torch.Generator``, None, or a :class:`RandomSource`.

    Returns:
        A :class:`RandomSource`: a :class:`TorchSource` for a generator or None, else
        ``generator`` itself. TypeError for anything else.

    Example:
        >>> as_source(None)
        TorchSource(None)
        >>> s = TorchSource(); as_source(s) is s
        True
    """
    if generator is None or isinstance(generator, torch.Generator):
        return TorchSource(generator)
    if isinstance(generator, RandomSource):
        return generator
    raise TypeError(
        f"generator must be a torch.Generator, an initlab RandomSource or None, "
        f"got {type(generator).__name__}"
    )
