"""Statistics across seeds: mean, standard deviation and a 95% confidence interval in range.

For each entry and each metric (validation accuracy, validation loss, training loss) at two
points, after epoch 2 (the seeds' comparison; the last epoch when fewer were trained) and after
the last epoch, over the seeds whose value is finite:

* ``mean``;
* ``std``: the sample standard deviation (``ddof=1``; 0 for a single seed);
* ``ci``: ``mean ± t * std / sqrt(n)``, the two-sided 95% Student-t interval with ``n - 1``
  degrees of freedom (``None`` for a single seed). Where that interval leaves the metric's
  range (:data:`METRIC_RANGES`: accuracy in [0, 1], losses >= 0), the t interval is taken on
  the logit scale (accuracy, values kept ``resolution / 2`` inside [0, 1]) or the log scale
  (losses) and mapped back (``method`` says which), and then widened to hold the mean: every
  interval lies in the range. When every seed gives the same value (``std == 0``) the
  interval has zero width; ``identical`` says so, and tables show it as "n seeds identical",
  not as certainty. scipy is not a dependency: the quantiles
  ``t(0.975, df)`` for df = 1..30 are the usual table values to three decimals
  (:data:`T_975`); above 30, the Cornish-Fisher expansion of t around the normal quantile
  z = 1.959964 to the 1/df³ term, within 1e-4 of the exact quantile there (2.021 at 40,
  1.984 at 100, tending to 1.960).

Seeds whose value is not finite (a diverged run) are left out of the numbers and counted in
``n_nonfinite``; the table says so, since leaving them out flatters that entry.

Entries are ranked by mean validation accuracy (higher first), ties by mean validation loss
(lower first); entries with no finite value come last. ``rank`` is the rank after the last
epoch, ``ranks[point]`` the rank at each point.

:func:`t_two_sided_p` gives the p-value of a t statistic (the regularised incomplete beta
function, Numerical Recipes' continued fraction), for the paired tests of
:mod:`initlab.lab.verdict`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .results import METRICS, RunResult

__all__ = [
    "METRIC_RANGES",
    "T_975",
    "EntryStats",
    "Summary",
    "summarise",
    "summarise_values",
    "t_quantile_975",
    "t_two_sided_p",
]

#: the range each metric lives in (intervals never leave it)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "val_acc": (0.0, 1.0),
    "val_loss": (0.0, math.inf),
    "train_loss": (0.0, math.inf),
}

#: two-sided 95% Student-t quantiles t(0.975, df), df = 1..30
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table for df <= 30, the Cornish-Fisher expansion above.

    Args:
        df: degrees of freedom, >= 1.

    Returns:
        The two-sided 95% Student-t quantile.

    Example:
        >>> t_quantile_975(2), round(t_quantile_975(100), 3)
        (4.303, 1.984)
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = _Z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
        + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).

    Args:
        t: the statistic (its sign does not matter).
        df: degrees of freedom, > 0.

    Returns:
        The two-sided p-value (NaN for NaN ``t``).

    Example:
        >>> round(t_two_sided_p(4.303, 2), 4)
        0.05
    """
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, max(0.0, _betainc(df / 2.0, 0.5, df / (df + t * t))))


@dataclasses.dataclass(frozen=True)
class Summary:
    """One metric of one entry at one epoch, across seeds (finite values only).

    Attributes:
        mean, std: over the finite values (std with ddof=1; 0 for one value).
        ci: the 95% interval, within the metric's range (None for fewer than 2 values).
        n: the finite values; ``n_nonfinite``: the others.
        method: how ``ci`` was made: ``"t"``, ``"logit-t"`` or ``"log-t"`` (module doc), or
            ``"none"`` (fewer than 2 finite values).

    Example:
        >>> Summary(0.9, 0.0, (0.9, 0.9), 3).identical
        True
    """

    mean: float
    std: float
    ci: tuple[float, float] | None
    n: int
    n_nonfinite: int = 0
    method: str = "t"

    @property
    def identical(self) -> bool:
        """Whether 2+ seeds all gave the same value, up to float32 rounding (a zero-width
        interval, not certainty)."""
        return self.n >= 2 and self.std <= 1e-7 * max(1.0, abs(self.mean))

    def to_dict(self) -> dict[str, Any]:
        """Plain data; NaN becomes None."""

        def clean(v: float) -> float | None:
            return v if math.isfinite(v) else None

        ci = None if self.ci is None else [clean(self.ci[0]), clean(self.ci[1])]
        return {
            "mean": clean(self.mean),
            "std": clean(self.std),
            "ci95": ci,
            "n": self.n,
            "n_nonfinite": self.n_nonfinite,
            "ci_method": self.method,
            "identical": self.identical,
        }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _transformed_ci(
    values: Sequence[float], lo: float, hi: float, resolution: float
) -> tuple[tuple[float, float], str]:
    """The t interval on the logit ([lo, hi] finite) or log ([lo, inf)) scale, mapped back."""
    if math.isinf(hi):
        floor = lo + 1e-12
        z = [math.log(max(v, floor) - lo) for v in values]
        m, s = _mean_std(z)
        half = t_quantile_975(len(z) - 1) * s / math.sqrt(len(z))
        return (lo + math.exp(m - half), lo + math.exp(min(m + half, 700.0))), "log-t"
    width = hi - lo
    eps = min(resolution / 2, 0.25) * width
    z = [math.log((u := min(max(v - lo, eps), width - eps)) / (width - u)) for v in values]
    m, s = _mean_std(z)
    half = t_quantile_975(len(z) - 1) * s / math.sqrt(len(z))

    def back(t: float) -> float:
        return lo + width / (1.0 + math.exp(-t)) if t > -700 else lo

    return (back(m - half), back(m + half)), "logit-t"


def summarise_values(
    values: Sequence[float],
    bounds: tuple[float, float] = (-math.inf, math.inf),
    resolution: float = 1e-3,
) -> Summary:
    """Mean, sample std (ddof=1) and a 95% interval of the finite ``values`` inside ``bounds``.

    The Student-t interval ``mean ± t(0.975, n-1) * std / sqrt(n)``; where it would leave
    ``bounds``, the t interval on the logit (both bounds finite) or log scale, mapped back and
    widened to hold the mean, then kept within ``bounds`` (module doc).

    Args:
        values: one value per seed; None/NaN/inf are left out and counted.
        bounds: the metric's range (:data:`METRIC_RANGES`).
        resolution: the metric's smallest step as a fraction of a finite range (for accuracy
            1 / validation-set size); values at a bound are moved half a step inside it for
            the logit.

    Returns:
        A :class:`Summary`.

    Example:
        >>> s = summarise_values([0.92, 0.96], bounds=(0.0, 1.0))
        >>> s.method, 0.0 <= s.ci[0] and s.ci[1] <= 1.0
        ('logit-t', True)
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    bad = len(values) - len(finite)
    n = len(finite)
    if n == 0:
        return Summary(math.nan, math.nan, None, 0, bad, "none")
    lo, hi = bounds
    mean = min(max(math.fsum(finite) / n, lo), hi)
    if n == 1:
        return Summary(mean, 0.0, None, 1, bad, "none")
    _, std = _mean_std(finite)
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    ci, method = (mean - half, mean + half), "t"
    if ci[0] < lo or ci[1] > hi:
        ci, method = _transformed_ci(finite, lo, hi, resolution)
        ci = (max(min(ci[0], mean), lo), min(max(ci[1], mean), hi))
    return Summary(mean, std, ci, n, bad, method)


@dataclasses.dataclass
class EntryStats:
    """An entry's statistics at epoch 2 (``"early"``) and at the last epoch (``"final"``).

    Attributes:
        entry: the entry's label.
        seeds: the seeds found for it.
        n_diverged: runs whose status is ``diverged``.
        epochs: ``{"early": 2, "final": E}`` (early is clamped to E).
        metrics: ``{"early"|"final": {metric: Summary}}``.
        rank: 1 for the best after the last epoch (see module doc).
        ranks: ``{"early"|"final": rank at that point}``.

    Example:
        >>> s = summarise_values([0.9, 0.92, 0.94], (0.0, 1.0))
        >>> EntryStats("kaiming", [0, 1, 2], 0, {"final": 10}, {"final": {"val_acc": s}}, 1)
        EntryStats(#1 'kaiming': final val acc 92.0%, 3 seeds, 0 diverged)
    """

    entry: str
    seeds: list[int]
    n_diverged: int
    epochs: dict[str, int]
    metrics: dict[str, dict[str, Summary]]
    rank: int = 0
    ranks: dict[str, int] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        acc = self.metrics.get("final", {}).get("val_acc")
        text = "n/a" if acc is None else f"{100 * acc.mean:.1f}%"
        return (f"EntryStats(#{self.rank} {self.entry!r}: final val acc {text}, "
                f"{len(self.seeds)} seeds, {self.n_diverged} diverged)")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "rank": self.rank,
            "ranks": dict(self.ranks),
            "entry": self.entry,
            "seeds": list(self.seeds),
            "n_diverged": self.n_diverged,
            "epochs": dict(self.epochs),
            "metrics": {
                point: {m: s.to_dict() for m, s in per.items()}
                for point, per in self.metrics.items()
            },
        }


def _rank_key(s: EntryStats, point: str = "final") -> tuple[float, float]:
    acc = s.metrics[point]["val_acc"].mean if "val_acc" in s.metrics[point] else math.nan
    loss = s.metrics[point]["val_loss"].mean if "val_loss" in s.metrics[point] else math.nan
    return (-acc if math.isfinite(acc) else math.inf, loss if math.isfinite(loss) else math.inf)


def _resolution(runs: Sequence[RunResult]) -> float:
    """1 / validation-set size when the runs record it, else 1e-3."""
    n_val = runs[0].config.get("data", {}).get("n_val") if runs else None
    return 1.0 / n_val if isinstance(n_val, int) and n_val > 0 else 1e-3


def summarise(results: Iterable[RunResult], early_epoch: int = 2) -> list[EntryStats]:
    """Per-entry statistics across seeds, ranked (entries in first-seen order among ties).

    Runs of one entry with different epoch counts are compared at the smallest one.

    Args:
        results: the runs (entries x seeds).
        early_epoch: the early point (clamped to the last epoch).

    Returns:
        One :class:`EntryStats` per entry, best first (module doc).

    Example:
        >>> from initlab.lab.results import RunResult
        >>> def run(entry, seed, acc):
        ...     m = {"train_loss": [2.3, 0.2], "val_loss": [2.3, 0.3], "val_acc": [0.1, acc]}
        ...     return RunResult(f"{entry}{seed}", entry, {}, seed, {}, m, versions={})
        >>> stats = summarise([run("a", 0, 0.8), run("b", 0, 0.9)])
        >>> [(s.entry, s.rank) for s in stats]
        [('b', 1), ('a', 2)]
    """
    by_entry: dict[str, list[RunResult]] = {}
    for r in results:
        by_entry.setdefault(r.entry, []).append(r)
    out = []
    for label, runs in by_entry.items():
        runs = sorted(runs, key=lambda r: r.seed)
        last = min(r.epochs for r in runs)
        points = {"early": min(early_epoch, last), "final": last}
        metrics = {
            point: {
                m: summarise_values(
                    [r.at_epoch(m, epoch) for r in runs],
                    METRIC_RANGES.get(m, (-math.inf, math.inf)),
                    _resolution(runs),
                )
                for m in METRICS
                if all(m in r.metrics for r in runs)
            }
            for point, epoch in points.items()
        }
        diverged = sum(r.status != "ok" for r in runs)
        out.append(EntryStats(label, [r.seed for r in runs], diverged, points, metrics))
    for point in ("early", "final"):
        for i, s in enumerate(sorted(out, key=lambda s: _rank_key(s, point)), start=1):
            s.ranks[point] = i
    out.sort(key=_rank_key)
    for i, s in enumerate(out, start=1):
        s.rank = i
    return out
