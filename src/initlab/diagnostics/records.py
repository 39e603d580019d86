"""What a diagnosis records: one :class:`LayerRecord` per layer call, and the :class:`Diagnosis`.

Definitions (every statistic is computed in float64 over the whole batch):

* ``std`` is the population standard deviation over all elements (batch, units, positions).
* A **unit** is a feature or channel: statistics "per unit" reduce over the batch and every
  spatial/sequence position (see ``unit_dim`` on each record).
* **Dead** (ReLU family): a unit whose output is never > 0 for any sample or position of the
  batch. ``dead_fraction`` = dead units / units.
* **Saturated** (tanh, sigmoid, hardtanh, softsign, hardsigmoid): a unit whose output lies in
  the saturated region for at least ``saturation_fraction`` (0.99) of its values. The region
  is ``|y| > level`` for tanh/softsign, ``y < 1 - level`` or ``y > level`` for sigmoid, and the
  clipping bounds for hardtanh/hardsigmoid, with ``level = saturation_level`` (0.99).

Vanishing / exploding flags (Glorot & Bengio 2010; He et al. 2015) look at the **weight
layers** (records of modules owning a parameter of role ``weight`` in the layer registry:
Linear, Conv, transformers' Conv1D, attention, ...; see ``LayerRecord.has_weight``), whose
outputs are the pre-activations:

* forward ratio ``r_f = std(out of last weight layer) / std(out of first)``;
* backward ratio ``r_b = std(dL/d out of first weight layer) / std(dL/d out of last)`` (how
  much the back-propagated gradient grows or shrinks on its way down to the input);
* per-layer geometric factor ``g = r ** (1 / (L - 1))`` over the ``L`` weight layers.

A direction is **vanishing** if ``r < ratio_low`` (1e-2) or ``g < factor_low`` (0.5), and
**exploding** if ``r > ratio_high`` (1e2) or ``g > factor_high`` (2). Both ratios are
invariant to the overall scale of the loss. All thresholds are fields of :class:`Thresholds`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from .rendering import Rendered, fmt, pct

if TYPE_CHECKING:
    from rich.table import Table

DIRECTIONS = ("forward", "backward")


@dataclasses.dataclass
class SkippedLayer:
    """A weight-bearing layer a tool (LSUV, a scheme comparison) left as it was, and why.

    Attributes:
        name: the layer's qualified name.
        kind: its class name.
        reason: why it was left.

    Example:
        >>> SkippedLayer("lm_head", "Linear", "weight tied to wte.weight").to_dict()["kind"]
        'Linear'
    """

    name: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


def skip_note(tool: str, skipped: list[SkippedLayer]) -> str | None:
    """One line naming the layers a tool left as they were, grouped by layer kind, or None.

    Args:
        tool: the tool's name, first word of the line.
        skipped: what it left, in order.

    Returns:
        ``"<tool> left N layer(s) as they were: Kind xK (names): reason; ..."`` (the reason
        of a kind's first layer, up to three names), None when nothing was left.

    Example:
        >>> skip_note("lsuv_", [SkippedLayer("lm_head", "Linear", "weight tied to wte.weight")])
        'lsuv_ left 1 layer(s) as they were: Linear x1 (lm_head): weight tied to wte.weight'
    """
    if not skipped:
        return None
    kinds: dict[str, list[SkippedLayer]] = {}
    for s in skipped:
        kinds.setdefault(s.kind, []).append(s)
    parts = []
    for kind, items in kinds.items():
        names = ", ".join(x.name for x in items[:3]) + (", ..." if len(items) > 3 else "")
        parts.append(f"{kind} x{len(items)} ({names}): {items[0].reason}")
    return f"{tool} left {len(skipped)} layer(s) as they were: " + "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Thresholds of the vanishing/exploding flags and of the saturation test (module docstring).

    Attributes:
        ratio_low, ratio_high: bounds on the last/first (forward) or first/last (backward)
            std ratio over the weight layers.
        factor_low, factor_high: bounds on the per-layer geometric factor of that ratio.
        saturation_level: |tanh| above it (sigmoid outside [1 - level, level]) is saturated.
        saturation_fraction: a unit is saturated when at least this fraction of its values
            (over batch and positions) is in the saturated region.

    Example:
        >>> Thresholds(ratio_low=1e-3).factor_low
        0.5
        >>> Thresholds(ratio_low=2.0)
        Traceback (most recent call last):
        ...
        ValueError: thresholds need 0 < ratio_low <= 1 <= ratio_high
    """

    ratio_low: float = 1e-2
    ratio_high: float = 1e2
    factor_low: float = 0.5
    factor_high: float = 2.0
    saturation_level: float = 0.99
    saturation_fraction: float = 0.99

    def __post_init__(self) -> None:
        if not 0 < self.ratio_low <= 1 <= self.ratio_high:
            raise ValueError("thresholds need 0 < ratio_low <= 1 <= ratio_high")
        if not 0 < self.factor_low <= 1 <= self.factor_high:
            raise ValueError("thresholds need 0 < factor_low <= 1 <= factor_high")
        if not 0.5 < self.saturation_level < 1 or not 0 < self.saturation_fraction <= 1:
            raise ValueError("thresholds need 0.5 < saturation_level < 1, 0 < fraction <= 1")


@dataclasses.dataclass
class Histogram:
    """Counts of values in ``len(counts)`` equal bins between ``edges[0]`` and ``edges[-1]``.

    Attributes:
        edges: the ``len(counts) + 1`` bin edges.
        counts: the number of values in each bin.

    Example:
        >>> Histogram([0.0, 0.5, 1.0], [3, 1]).to_dict()
        {'edges': [0.0, 0.5, 1.0], 'counts': [3, 1]}
    """

    edges: list[float]
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        """``{"edges": ..., "counts": ...}``."""
        return {"edges": self.edges, "counts": self.counts}


@dataclasses.dataclass
class SingularValues:
    """Largest and smallest singular value of a matrix (or of one packed block) and their ratio.

    Attributes:
        largest: the largest singular value.
        smallest: the smallest singular value.
        condition: largest / smallest.

    Example:
        >>> SingularValues(2.0, 0.5, 4.0).to_dict()
        {'largest': 2.0, 'smallest': 0.5, 'condition': 4.0}
    """

    largest: float
    smallest: float
    condition: float

    def to_dict(self) -> dict[str, Any]:
        """The three values as a dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class WeightStats:
    """One parameter of a layer: value std, gradient std, singular values (>= 2-D only).

    Singular values are those of the parameter reshaped to ``[shape[0], -1]``; ``blocks`` holds
    them per packed block (MultiheadAttention q/k/v, LSTM gates...) when the layer has blocks.
    ``grad_std`` is the std of dL/dW over this diagnosis' batch (the sum over all calls of a
    module called more than once); None when the parameter does not require grad or is unused.

    Attributes:
        name: the parameter's name in its layer (``"weight"``, ``"out_proj.weight"``).
        shape: its shape.
        std: the std of its values.
        grad_std: the std of dL/dW, or None.
        sv: its singular values, or None (< 2-D).
        blocks: singular values per packed block.
        tied_to: for a tied parameter met again (GPT-2's ``lm_head.weight``), the qualified
            name it was first recorded under; its singular values and gradient are given there
            only, so a tied parameter is counted once.

    Example:
        >>> WeightStats("weight", (4, 3), 0.5, sv=SingularValues(2.0, 0.5, 4.0)).to_dict()["sv"]
        {'largest': 2.0, 'smallest': 0.5, 'condition': 4.0}
    """

    name: str
    shape: tuple[int, ...]
    std: float
    grad_std: float | None = None
    sv: SingularValues | None = None
    blocks: dict[str, SingularValues] = dataclasses.field(default_factory=dict)
    tied_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict (shape as a list)."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "std": self.std,
            "grad_std": self.grad_std,
            "sv": None if self.sv is None else self.sv.to_dict(),
            "blocks": {k: v.to_dict() for k, v in self.blocks.items()},
            "tied_to": self.tied_to,
        }


@dataclasses.dataclass
class LayerRecord:
    """One call of one layer, in execution order (``index``).

    ``name`` is the module's qualified name (``"(root)"`` for the model itself), ``call`` the
    call index of that module (a module called twice has records with call 0 and 1).
    ``role`` is ``"activation"`` for activation modules, else ``"layer"``; ``has_weight`` is
    True for weight layers (their output is a pre-activation; see the attribute). Input
    statistics are taken before the module runs (so an in-place activation's input is its
    pre-activation). ``weights`` is filled on call 0 only. None means "not applicable" or "no
    gradient reached this tensor".

    Attributes:
        index: the call's position in execution order.
        name: the module's qualified name.
        kind: the module's class name.
        call: the module's call index.
        role: ``"activation"`` or ``"layer"``.
        has_weight: the module is a weight layer: it owns a parameter of role ``weight`` in the
            layer registry (Linear, Conv, Conv1D, attention...; not an Embedding, whose
            output is a row lookup), a >= 2-D parameter of a layer the registry does not
            know, or a parametrization.
        input_shape: the first input tensor's shape; ``input_mean``, ``input_std`` its statistics.
        output_shape: the output's shape; ``output_mean``, ``output_std`` its statistics.
        unit_dim: the dimension of units (features/channels) in the output.
        dead_fraction: the fraction of dead units (ReLU family).
        saturated_fraction: the fraction of saturated units (tanh, sigmoid...).
        grad_output_std: the std of dL/d output.
        weights: the module's parameters' statistics (call 0).
        histogram: of the output; ``grad_histogram``: of dL/d output (``bins > 0``).

    Example:
        >>> r = LayerRecord(3, "encoder.fc", "Linear", call=1, output_std=0.5)
        >>> r.label, r.to_dict()["output_std"]
        ('encoder.fc#1', 0.5)
    """

    index: int
    name: str
    kind: str
    call: int = 0
    role: str = "layer"
    has_weight: bool = False
    input_shape: tuple[int, ...] | None = None
    input_mean: float | None = None
    input_std: float | None = None
    output_shape: tuple[int, ...] | None = None
    output_mean: float | None = None
    output_std: float | None = None
    unit_dim: int | None = None
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    grad_output_std: float | None = None
    weights: dict[str, WeightStats] = dataclasses.field(default_factory=dict)
    histogram: Histogram | None = None
    grad_histogram: Histogram | None = None

    @property
    def label(self) -> str:
        """``name`` plus ``#call`` for the second and later calls."""
        return self.name if self.call == 0 else f"{self.name}#{self.call}"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dict (tuples as lists, nested records as dicts)."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "weights":
                v = {k: w.to_dict() for k, w in v.items()}
            elif isinstance(v, Histogram):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d


def ratio_and_factor(series: list[float | None]) -> tuple[float | None, float | None]:
    """``(last / first, (last / first) ** (1 / (n - 1)))`` of a series; None when undefined.

    Args:
        series: values along depth (None entries are skipped).

    Returns:
        ``(ratio, per-layer factor)``, or ``(None, None)`` with fewer than two values or a first
        value that is not positive and finite.

    Example:
        >>> ratio_and_factor([1.0, None, 0.25, 0.0625])  # 3 values: factor = 0.0625 ** (1/2)
        (0.0625, 0.25)
    """
    vals = [v for v in series if v is not None]
    if len(vals) < 2 or not math.isfinite(vals[0]) or vals[0] <= 0 or not math.isfinite(vals[-1]):
        return None, None
    r = vals[-1] / vals[0]
    return r, (r ** (1.0 / (len(vals) - 1)) if r > 0 else 0.0)


@dataclasses.dataclass(repr=False)
class Diagnosis(Rendered):
    """The records of one :func:`~initlab.diagnostics.diagnose` run and the flags derived from them.

    Attributes:
        records: one :class:`LayerRecord` per layer call, in execution order.
        loss: the loss value the gradients were taken of (None when no backward ran).
        loss_name: which loss was used (``"custom"``, ``"cross_entropy"``, ``"mse"`` or
            ``"half_sum_squares"``).
        train: the mode the model ran in.
        thresholds: the :class:`Thresholds` the flags use.

    The flags follow the module docstring: forward ratio r = std(out of the last weight layer) /
    std(out of the first), per-layer factor g = r^(1/(L-1)); vanishing when r < ratio_low or
    g < factor_low. Glorot & Bengio 2010, https://proceedings.mlr.press/v9/glorot10a.html

    Example:
        >>> recs = [LayerRecord(i, str(i), "Linear", has_weight=True, output_std=s)
        ...         for i, s in enumerate([1.0, 0.1, 0.001])]
        >>> d = Diagnosis(recs)
        >>> d.forward_ratio, round(d.factor("forward"), 4), d.vanishing["forward"]  # 0.001 ** 0.5
        (0.001, 0.0316, True)
        >>> d.summary()
        'forward: vanishing (ratio 0.001, per layer 0.03162); backward: ok (ratio -, per layer -)'
    """

    records: list[LayerRecord]
    loss: float | None = None
    loss_name: str = ""
    train: bool = False
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)

    # -- series ---------------------------------------------------------------------------
    def weight_records(self) -> list[LayerRecord]:
        """Records of weight layers (their outputs are the pre-activations); all if none."""
        w = [r for r in self.records if r.has_weight]
        return w or list(self.records)

    def series(self, quantity: str = "output_std", layers: str = "weights") -> list[float | None]:
        """A record field along depth, over ``layers`` = ``"weights"`` or ``"all"`` records."""
        recs = self.weight_records() if layers == "weights" else self.records
        return [getattr(r, quantity) for r in recs]

    @property
    def forward_ratio(self) -> float | None:
        """std(output of the last weight layer) / std(output of the first)."""
        return ratio_and_factor(self.series("output_std"))[0]

    @property
    def backward_ratio(self) -> float | None:
        """std(dL/d output of the first weight layer) / std(dL/d output of the last)."""
        return ratio_and_factor(self.series("grad_output_std")[::-1])[0]

    def factor(self, direction: str) -> float | None:
        """Per-layer geometric factor of the std in ``direction`` ("forward"/"backward")."""
        s = self.series("output_std" if direction == "forward" else "grad_output_std")
        return ratio_and_factor(s if direction == "forward" else s[::-1])[1]

    def _flag(self, direction: str, low: bool) -> bool:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        t = self.thresholds
        r = self.forward_ratio if direction == "forward" else self.backward_ratio
        g = self.factor(direction)
        if r is None or g is None:
            return False
        if low:
            return r < t.ratio_low or g < t.factor_low
        return r > t.ratio_high or g > t.factor_high

    @property
    def vanishing(self) -> dict[str, bool]:
        """``{"forward": bool, "backward": bool}``: ratio < ratio_low or factor < factor_low."""
        return {d: self._flag(d, True) for d in DIRECTIONS}

    @property
    def exploding(self) -> dict[str, bool]:
        """``{"forward": bool, "backward": bool}``: ratio > ratio_high or factor > factor_high."""
        return {d: self._flag(d, False) for d in DIRECTIONS}

    @property
    def dead_layers(self) -> list[str]:
        """Labels of activation calls with at least one dead unit."""
        return [r.label for r in self.records if r.dead_fraction]

    @property
    def saturated_layers(self) -> list[str]:
        """Labels of activation calls with at least one saturated unit."""
        return [r.label for r in self.records if r.saturated_fraction]

    def flags(self) -> dict[str, Any]:
        """Vanishing, exploding, dead and saturated layers and the ratios, as a dict."""
        return {
            "vanishing": self.vanishing,
            "exploding": self.exploding,
            "forward_ratio": self.forward_ratio,
            "backward_ratio": self.backward_ratio,
            "forward_factor": self.factor("forward"),
            "backward_factor": self.factor("backward"),
            "dead_layers": self.dead_layers,
            "saturated_layers": self.saturated_layers,
        }

    def summary(self) -> str:
        """One line: the flags and ratios."""
        parts = []
        for d in DIRECTIONS:
            r = self.forward_ratio if d == "forward" else self.backward_ratio
            state = "vanishing" if self.vanishing[d] else "exploding" if self.exploding[d] else "ok"
            parts.append(f"{d}: {state} (ratio {fmt(r)}, per layer {fmt(self.factor(d))})")
        for what, field, labels in (
            ("dead", "dead_fraction", self.dead_layers),
            ("saturated", "saturated_fraction", self.saturated_layers),
        ):
            if labels:
                worst = max(getattr(r, field) or 0.0 for r in self.records)
                parts.append(f"{what} units in {len(labels)} activation(s) (max {pct(worst)})")
        return "; ".join(parts)

    # -- output ---------------------------------------------------------------------------
    HEADERS = ("#", "layer", "type", "in std", "out mean", "out std", "dead", "sat",
               "grad std", "weight", "σ max", "σ min", "cond", "dW std")  # fmt: skip

    def rows(self) -> list[list[str]]:
        """Table cells, one row per record: layer, stds, dead/saturated %, main weight stats."""
        out = []
        for r in self.records:
            w = _main_weight(r)
            sv = w.sv if w is not None else None
            out.append([
                str(r.index), r.label, r.kind, fmt(r.input_std), fmt(r.output_mean),
                fmt(r.output_std), pct(r.dead_fraction), pct(r.saturated_fraction),
                fmt(r.grad_output_std), w.name if w else "", fmt(sv and sv.largest),
                fmt(sv and sv.smallest), fmt(sv and sv.condition), fmt(w and w.grad_std),
            ])  # fmt: skip
        return out

    def table(self, title: str | None = None) -> Table:
        """A rich Table, one row per record; the caption carries :meth:`summary`."""
        from rich.table import Table

        t = Table(title=title or f"diagnosis ({'train' if self.train else 'eval'} mode, "
                  f"loss {self.loss_name} = {fmt(self.loss)})", caption=self.summary())  # fmt: skip
        for h in self.HEADERS:
            t.add_column(h, justify="left" if h in ("layer", "type", "weight") else "right")
        for row in self.rows():
            t.add_row(*row)
        return t

    def to_dict(self) -> dict[str, Any]:
        """Loss, mode, thresholds, flags and every record, as a JSON-friendly dict."""
        return {
            "train": self.train,
            "loss": self.loss,
            "loss_name": self.loss_name,
            "thresholds": dataclasses.asdict(self.thresholds),
            "flags": self.flags(),
            "records": [r.to_dict() for r in self.records],
        }


def _main_weight(r: LayerRecord) -> WeightStats | None:
    for w in r.weights.values():
        if len(w.shape) >= 2:
            return w
    return next(iter(r.weights.values()), None)
