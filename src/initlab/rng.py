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
    """What a scheme may ask for (the fills write ``t`` in place and return it), and what
    the executor asks of a source (``addressable``, ``fork``, ``achieved_std``)."""

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

    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor: ...

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor: ...

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        """Standard normal conditioned on ``[a, b]`` (bounds in standard deviations)."""
        ...

    def randperm(self, n: int) -> Tensor: ...


class TorchSource:
    """Draws from a ``torch.Generator`` (None: the global one) exactly as torch.nn.init does."""

    __slots__ = ("generator",)
    addressable = False

    def __init__(self, generator: torch.Generator | None = None) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator

    def uniform_(self, t: Tensor, low: float, high: float) -> Tensor:
        return t.uniform_(low, high, generator=self.generator)

    def normal_(self, t: Tensor, mean: float, std: float) -> Tensor:
        return t.normal_(mean, std, generator=self.generator)

    def trunc_normal_(self, t: Tensor, a: float, b: float) -> Tensor:
        return standard_trunc_normal_(t, a, b, generator=self.generator)

    def randperm(self, n: int) -> Tensor:
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
    """Accept a torch.Generator, None (global RNG) or any RandomSource."""
    if generator is None or isinstance(generator, torch.Generator):
        return TorchSource(generator)
    if isinstance(generator, RandomSource):
        return generator
    raise TypeError(
        f"generator must be a torch.Generator, an initlab RandomSource or None, "
        f"got {type(generator).__name__}"
    )
