"""Attention logits under muP: 1/d instead of 1/sqrt(d), set where a model exposes the scale.

Tensor Programs V (https://arxiv.org/abs/2203.03466, Section 4 and Appendix J) scales the
attention logits ``q·k`` by 1/d (d: the head dimension) rather than 1/sqrt(d), since after
training q and k are correlated and ``q·k`` grows like d. Anchored at the base model (the
default, ``mode="base"``), the scale is ``sqrt(d_base) / d``: the base model keeps its 1/sqrt(d)
and the scale falls as 1/d with width, so every multiplier of the parametrisation is 1 at the
base width. ``mode="1/d"`` uses 1/d itself, as the mup package's examples do.

A module's scale is settable when it has a float ``scaling`` (transformers' attention classes:
GPT-2, Llama, Qwen2, BERT's SDPA path...) or ``scale`` attribute next to an int ``head_dim``; the
new value is the old one times ``factor`` (which keeps GPT-2's ``scale_attn_by_inverse_layer_idx``).
Other attention modules (``nn.MultiheadAttention``, whose functional call has no scale argument)
are reported as not settable: their logits keep 1/sqrt(d), which is not full muP.
"""

from __future__ import annotations

import dataclasses
import math

from torch import nn

from .classify import MupError, base_name, canonical

__all__ = ["ATTENTION_MODES", "AttentionScale", "find_attention"]

ATTENTION_MODES = ("base", "1/d")
_SCALE_ATTRS = ("scaling", "scale")


@dataclasses.dataclass(frozen=True)
class AttentionScale:
    """One attention module and what muP does to its logit scale.

    Attributes:
        module: the canonical module name.
        settable: whether the scale can be set (``attr`` names it).
        attr: the attribute holding the scale (``"scaling"``), or None.
        head_dim, base_head_dim: the head dimension of the model and of the base.
        factor: what the scale is multiplied by (1.0 when the head dimension does not grow).
        reason: how it is set, or why it cannot be.

    Example:
        >>> a = AttentionScale("h.0.attn", True, "scaling", 64, 16, 0.5, "scaling *= 0.5")
        >>> a.factor * 64 ** -0.5 == 16 ** 0.5 / 64
        True
    """

    module: str
    settable: bool
    attr: str | None
    head_dim: int | None
    base_head_dim: int | None
    factor: float
    reason: str

    def to_dict(self) -> dict[str, object]:
        """The fields as a dict (JSON-ready).

        Example:
            >>> AttentionScale("a", False, None, None, None, 1.0, "why").to_dict()["reason"]
            'why'
        """
        return dataclasses.asdict(self)


def _is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or "Attention" in type(module).__name__


def _head_dim(module: nn.Module) -> int | None:
    hd = getattr(module, "head_dim", None)
    return hd if isinstance(hd, int) and not isinstance(hd, bool) else None


def find_attention(model: nn.Module, base: nn.Module, mode: str = "base") -> list[AttentionScale]:
    """The attention modules of ``model`` (class name containing "Attention", or
    ``nn.MultiheadAttention``) with the factor that turns their logit scale into muP's.

    Args:
        model: the model.
        base: the base model (same module names).
        mode: ``"base"`` (sqrt(d_base)/d) or ``"1/d"`` (see the module doc).

    Returns:
        One :class:`AttentionScale` per attention module (outermost only), in model order.

    Example:
        >>> from torch import nn
        >>> found = find_attention(nn.MultiheadAttention(8, 2), nn.MultiheadAttention(4, 2))
        >>> found[0].settable, found[0].reason[:38]
        (False, 'MultiheadAttention exposes no logit sc')
    """
    if mode not in ATTENTION_MODES:
        raise MupError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {mode!r}")
    base_modules = {canonical(n): m for n, m in base.named_modules()}
    out: list[AttentionScale] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if not _is_attention(module) or any(name.startswith(f"{p}.") for p in inside):
            continue
        inside.append(name)
        cname = canonical(name)
        bname = base_name(cname, base_modules, module=True)
        bmod = base_modules.get(bname) if bname is not None else None
        hd = _head_dim(module)
        bhd = _head_dim(bmod) if bmod is not None else None
        attr = next((a for a in _SCALE_ATTRS if isinstance(getattr(module, a, None), float)), None)
        cls = type(module).__name__
        if attr is None or hd is None or bhd is None:
            if bmod is None:
                what = "no counterpart in the base"
            elif attr is None:
                what = "no logit scale attribute (scaling/scale)"
            else:
                what = "no head_dim"
            out.append(
                AttentionScale(
                    cname, False, attr, hd, bhd, 1.0,
                    f"{cls} exposes {what}: its logits keep 1/sqrt(d); not full muP "
                    "(use a module with a settable scale, or one whose head_dim does not grow)",
                )
            )  # fmt: skip
            continue
        factor = math.sqrt(bhd / hd) if mode == "base" else 1.0 / math.sqrt(hd)
        how = (
            f"{attr} *= {factor:.6g} (head_dim {bhd} -> {hd})"
            if factor != 1.0
            else f"head_dim does not grow ({hd}): {attr} unchanged"
        )
        out.append(AttentionScale(cname, True, attr, hd, bhd, factor, how))
    return out
