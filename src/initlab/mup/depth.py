"""Depth scaling (opt-in): residual branches multiplied by (L_base/L)^alpha, LRs to match.

* ``"sqrt"``, Depth-muP (alpha = 1/2): Yang, Yu, Zhu, Hayou 2023, "Tensor Programs VI",
  https://arxiv.org/abs/2310.02244;
* ``"complete"``, CompleteP (alpha = 1): Dey et al. 2025, https://arxiv.org/abs/2505.01618.

Each residual branch's output (the last layer of each attention and MLP branch) is multiplied by
``m_L^-alpha``, with ``m_L = L / L_base`` the depth multiplier (L: the number of blocks, read
from the longest ``nn.ModuleList`` of same-class blocks). Under Adam every parameter inside the
blocks (weights, biases, norms) gets its LR multiplied by ``m_L^(alpha-1)`` (CompleteP's rule:
1/sqrt(m_L) for Depth-muP, 1 for CompleteP; the reference implementations, e.g. EleutherAI's
nanoGPT-mup ``completep`` branch, apply it to all block parameters); parameters outside the
blocks (embeddings, final norm, readout) keep theirs. SGD's LR gets no depth factor (Tensor
Programs VI, Depth-muP for SGD). Adam's epsilon, which CompleteP also scales
(by ``m_N^-1 m_L^-alpha``), is not set here: pass it to the optimizer. Everything is 1 when the
model has the base's depth.

The branch layers are found by name inside each block: by default ``attn.c_proj``,
``mlp.c_proj`` (GPT-2), ``self_attn.o_proj``, ``mlp.down_proj`` (Llama, Mistral, Qwen2),
``attention.output.dense``, ``output.dense`` (BERT); others are given as glob patterns relative
to a block (``branches=("attn.out", "ff.fc2")``).
"""

from __future__ import annotations

import dataclasses

from torch import nn

from ..policy.patterns import pattern_matches
from .classify import MupError, canonical

__all__ = ["DEFAULT_BRANCHES", "DEPTH_RULES", "Depth", "find_depth"]

#: depth rule -> alpha
DEPTH_RULES: dict[str, float] = {"sqrt": 0.5, "complete": 1.0}

DEFAULT_BRANCHES: tuple[str, ...] = (
    "attn.c_proj",
    "mlp.c_proj",
    "self_attn.o_proj",
    "mlp.down_proj",
    "attention.output.dense",
    "output.dense",
)


@dataclasses.dataclass(frozen=True)
class Depth:
    """The depth scaling of one model.

    Attributes:
        rule: ``"sqrt"`` or ``"complete"``.
        alpha: the exponent (1/2 or 1).
        blocks: the canonical name of the block list.
        depth, base_depth: L and L_base.
        branch_mult: the residual-branch multiplier, (L_base/L)^alpha.
        lr_mult_adam: the Adam LR factor of the parameters inside the blocks,
            (L/L_base)^(alpha-1).
        branches: the canonical names of the branch modules whose output is multiplied.

    Example:
        >>> d = Depth("sqrt", 0.5, "h", 8, 2, 0.5, 0.5, ("h.0.mlp.c_proj",))
        >>> d.branch_mult == (2 / 8) ** 0.5
        True
    """

    rule: str
    alpha: float
    blocks: str
    depth: int
    base_depth: int
    branch_mult: float
    lr_mult_adam: float
    branches: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """The fields as a dict (JSON-ready).

        Example:
            >>> Depth("sqrt", 0.5, "h", 2, 2, 1.0, 1.0, ()).to_dict()["rule"]
            'sqrt'
        """
        d = dataclasses.asdict(self)
        d["branches"] = list(self.branches)
        return d


def _block_lists(model: nn.Module) -> dict[str, nn.ModuleList]:
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            kinds = {type(m) for m in module}
            if len(kinds) == 1:
                out[canonical(name)] = module
    return out


def find_depth(
    model: nn.Module, base: nn.Module, rule: str, branches: tuple[str, ...] | None = None
) -> Depth:
    """The :class:`Depth` of ``model`` against ``base`` under ``rule``.

    Args:
        model: the model.
        base: the base model (its block list gives L_base).
        rule: ``"sqrt"`` (Depth-muP) or ``"complete"`` (CompleteP).
        branches: glob patterns of the branch layers relative to a block (default:
            :data:`DEFAULT_BRANCHES`).

    Returns:
        The depth scaling.

    Raises:
        MupError: an unknown rule, no block list, or no branch layer found.

    Example:
        >>> from torch import nn
        >>> class Block(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.mlp = nn.ModuleDict({"c_proj": nn.Linear(4, 4)})
        >>> net = lambda n: nn.ModuleDict({"h": nn.ModuleList(Block() for _ in range(n))})
        >>> d = find_depth(net(8), net(2), "complete")
        >>> d.depth, d.base_depth, d.branch_mult, d.lr_mult_adam, d.branches[:1]
        (8, 2, 0.25, 1.0, ('h.0.mlp.c_proj',))
    """
    if rule not in DEPTH_RULES:
        raise MupError(
            f"depth must be None, 'sqrt' (Depth-muP) or 'complete' (CompleteP), got {rule!r}"
        )
    alpha = DEPTH_RULES[rule]
    lists = _block_lists(model)
    if not lists:
        raise MupError(
            "depth scaling needs the residual blocks in an nn.ModuleList of one class; "
            f"{type(model).__name__} has none: leave depth=None"
        )
    name = max(lists, key=lambda n: len(lists[n]))
    base_lists = _block_lists(base)
    if name not in base_lists:
        raise MupError(f"the base model has no block list {name!r}: build it with the same class")
    depth, base_depth = len(lists[name]), len(base_lists[name])
    patterns = tuple(branches) if branches is not None else DEFAULT_BRANCHES
    found = []
    for i, block in enumerate(lists[name]):
        for sub, _ in block.named_modules():
            if sub and any(pattern_matches(p, canonical(sub)) for p in patterns):
                found.append(f"{name}.{i}.{canonical(sub)}")
    if not found:
        raise MupError(
            f"depth scaling: no residual branch layer in the blocks of {name!r} matches "
            f"{', '.join(patterns)}; pass depth_branches=('attn.out', 'mlp.fc2')-style patterns "
            "naming each branch's last layer relative to a block"
        )
    m_l = depth / base_depth
    return Depth(
        rule=rule,
        alpha=alpha,
        blocks=name,
        depth=depth,
        base_depth=base_depth,
        branch_mult=m_l**-alpha,
        lr_mult_adam=m_l ** (alpha - 1.0),
        branches=tuple(found),
    )
