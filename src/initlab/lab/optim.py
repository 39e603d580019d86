"""The lab's optimizers: torch's fused SGD, Adam and AdamW kernels, called directly.

The numbers are those of ``torch.optim.SGD/Adam/AdamW(..., fused=True)``, bit for bit (tested):
the same kernels (``torch._fused_sgd_``, ``torch._fused_adam_``, ``torch._fused_adamw_``) on the
same state, one call per step over every parameter. What is left out is torch.optim's wrapper,
whose first ``step()`` imports ``torch._dynamo`` (about 0.9 s, before a comparison's first
progress report) to place graph breaks that only matter under ``torch.compile``.

Every update is element-wise (each element from its own gradient and state and scalar
hyper-parameters), so stacked runs train exactly as they would alone.

* SGD with momentum μ, dampening 0, weight decay λ: ``g ← g + λθ``; ``b ← g`` on the first
  step, else ``b ← μb + g``; ``θ ← θ − lr·b`` (Sutskever et al. 2013,
  http://proceedings.mlr.press/v28/sutskever13.html).
* Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980), step t: ``g ← g + λθ``;
  ``m ← β₁m + (1 − β₁)g``; ``v ← β₂v + (1 − β₂)g²``;
  ``θ ← θ − lr·(m / (1 − β₁ᵗ)) / (sqrt(v / (1 − β₂ᵗ)) + ε)``.
* AdamW (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101): Adam without the
  ``λθ`` in ``g``, and ``θ ← θ(1 − lr·λ)`` first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["FUSED_KINDS", "FusedOptimizer", "fused_available"]

#: the optimizers this module runs
FUSED_KINDS = ("sgd", "adam", "adamw")


def fused_available(params: Sequence[Tensor]) -> bool:
    """Whether torch's fused kernels take these parameters: float32, float16 or bfloat16, on
    CPU or CUDA (float64 goes to torch.optim's own loop, as it always did in the lab).

    Args:
        params: the tensors to train.

    Returns:
        True when every one is of a fused dtype and device, and torch has the kernels.

    Example:
        >>> f64 = torch.zeros(3, dtype=torch.float64)
        >>> fused_available([torch.zeros(3)]), fused_available([f64])
        (True, False)
    """
    ok_dtypes = (torch.float32, torch.float16, torch.bfloat16)
    return (
        bool(params)
        and all(p.dtype in ok_dtypes and p.device.type in ("cpu", "cuda") for p in params)
        and all(hasattr(torch, f) for f in ("_fused_sgd_", "_fused_adam_", "_fused_adamw_"))
    )


class FusedOptimizer:
    """SGD (momentum), Adam or AdamW over ``params`` by one fused kernel call per step.

    Args:
        params: the tensors to train (leaves with ``requires_grad``).
        kind: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: the learning rate.
        momentum: SGD's momentum (0: plain SGD).
        weight_decay: λ (L2 in the gradient for SGD and Adam; decoupled for AdamW).
        betas: Adam's (β₁, β₂).
        eps: Adam's ε.

    Example:
        >>> w = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = FusedOptimizer([w], "sgd", lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()  # dL/dw = 2w
        >>> opt.step()
        >>> w.detach().tolist()
        [0.800000011920929, -1.600000023841858]
        >>> ref = torch.tensor([1.0, -2.0], requires_grad=True)
        >>> torch_opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, fused=True)
        >>> (ref * ref).sum().backward()
        >>> torch_opt.step()
        >>> torch.equal(ref, w)
        True
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        kind: str,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if kind not in FUSED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FUSED_KINDS)}, got {kind!r}")
        self.params = list(params)
        self.kind, self.lr, self.momentum = kind, float(lr), float(momentum)
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, float(eps)
        self.state: dict[int, dict[str, Tensor]] = {}  # by position in params

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (``set_to_none``) or zero them."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient (the others are left alone)."""
        live = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [p for _, p in live]
        grads = [p.grad for _, p in live]
        if self.kind == "sgd":
            self._sgd([i for i, _ in live], params, grads)
        else:
            self._adam([i for i, _ in live], params, grads)

    def _sgd(self, idx: list[int], params: list[Tensor], grads: list[Tensor]) -> None:
        bufs: list[Tensor] = []
        first = False
        if self.momentum != 0:
            first = all(i not in self.state for i in idx)  # torch.optim's own first-step rule
            for i, g in zip(idx, grads, strict=True):
                if i not in self.state:
                    self.state[i] = {"momentum_buffer": torch.empty_like(g)}
                bufs.append(self.state[i]["momentum_buffer"])
        torch._fused_sgd_(
            params, grads, bufs, weight_decay=self.weight_decay, momentum=self.momentum,
            lr=self.lr, dampening=0.0, nesterov=False, maximize=False, is_first_step=first,
        )  # fmt: skip

    def _adam(self, idx: list[int], params: list[Tensor], grads: list[Tensor]) -> None:
        for i, p in zip(idx, params, strict=True):
            if i not in self.state:
                self.state[i] = {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        states = [self.state[i] for i in idx]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        kernel = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
        kernel(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
            steps, amsgrad=False, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
            weight_decay=self.weight_decay, eps=self.eps, maximize=False,
        )  # fmt: skip
