"""One fixed colour per entry, the same in every figure and the HTML report, run after run.

The default entries have hand-picked, distinct colours (:data:`ENTRY_COLORS`); failures-prone
constant inits get greys and dark tones, the good inits saturated hues. Any other label takes a
slot of :data:`EXTRA_COLORS` chosen by a hash of its name (SHA-256, so stable across runs and
machines); when two labels of one comparison land on the same slot, the later one in sorted
order takes the next free slot, so colours within a comparison are always distinct (up to
``len(ENTRY_COLORS) + len(EXTRA_COLORS)`` entries; past that, slots repeat).

Example:
    >>> entry_colors(["kaiming", "xavier"])
    {'kaiming': '#1f77b4', 'xavier': '#2ca02c'}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["ENTRY_COLORS", "EXTRA_COLORS", "GREY", "entry_colors"]

#: colours of the default entries (and LSUV)
ENTRY_COLORS: dict[str, str] = {
    "kaiming": "#1f77b4",
    "orthogonal": "#ff7f0e",
    "xavier": "#2ca02c",
    "lecun": "#d62728",
    "torch_default": "#9467bd",
    "normal_rule": "#8c564b",
    "uniform_rule": "#e377c2",
    "uniform_centered": "#17becf",
    "uniform": "#bcbd22",
    "zeros": "#7f7f7f",
    "ones": "#1b1b1b",
    "lsuv": "#637939",
}
#: slots for every other label (distinct from the above)
EXTRA_COLORS: tuple[str, ...] = (
    "#393b79", "#ad494a", "#8ca252", "#bd9e39", "#a55194", "#6b6ecf", "#e7969c", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363", "#9c9ede", "#cedb9c", "#e7cb94", "#de9ed6",
)  # fmt: skip
#: the colour of entries drawn as context (not highlighted)
GREY = "#c8c8c8"


def _slot(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big") % len(EXTRA_COLORS)


def entry_colors(labels: Iterable[str]) -> dict[str, str]:
    """``{label: "#rrggbb"}`` for ``labels`` (order kept): fixed per name, distinct within them.

    Args:
        labels: entry labels (duplicates are kept once).

    Returns:
        One colour per label (module doc).

    Example:
        >>> entry_colors(["zeros", "my_policy"])["zeros"]
        '#7f7f7f'
    """
    labels = list(dict.fromkeys(labels))
    out = {label: ENTRY_COLORS[label] for label in labels if label in ENTRY_COLORS}
    used = set(out.values())
    for label in sorted(x for x in labels if x not in out):
        slot = _slot(label)
        for k in range(len(EXTRA_COLORS)):
            color = EXTRA_COLORS[(slot + k) % len(EXTRA_COLORS)]
            if color not in used:
                break
        else:
            color = EXTRA_COLORS[slot]
        out[label] = color
        used.add(color)
    return {label: out[label] for label in labels}
