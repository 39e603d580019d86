"""Statistics across seeds: mean, standard deviation and a 95% t confidence interval.

For each entry and each metric (validation accuracy, validation loss, training loss) at two
points, after epoch 2 (the seeds' comparison; the last epoch when fewer were trained) and after
the last epoch, over the seeds whose value is finite:

* ``mean``;
* ``std``: the sample standard deviation (``ddof=1``; 0 for a single seed);
* ``ci``: ``mean ± t * std / sqrt(n)``, the two-sided 95% Student-t interval with ``n - 1``
  degrees of freedom (``None`` for a single seed). scipy is not a dependency: the quantiles
  ``t(0.975, df)`` for df = 1..30 are the usual table values to three decimals
  (:data:`T_975`); above 30, the Cornish-Fisher expansion of t around the normal quantile
  z = 1.959964 to the 1/df³ term, within 1e-4 of the exact quantile there (2.021 at 40,
  1.984 at 100, tending to 1.960).

Seeds whose value is not finite (a diverged run) are left out of the numbers and counted in
``n_nonfinite``; the table says so, since leaving them out flatters that entry.

Entries are ranked by mean final validation accuracy (higher first), ties by mean final
validation loss (lower first); entries with no finite value come last.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .results import METRICS, RunResult

__all__ = ["T_975", "EntryStats", "Summary", "summarise", "summarise_values", "t_quantile_975"]

#: two-sided 95% Student-t quantiles t(0.975, df), df = 1..30
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table for df <= 30, the Cornish-Fisher expansion above."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = _Z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclasses.dataclass(frozen=True)
class Summary:
    """One metric of one entry at one epoch, across seeds (finite values only)."""

    mean: float
    std: float
    ci: tuple[float, float] | None
    n: int
    n_nonfinite: int = 0

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
        }


def summarise_values(values: Sequence[float]) -> Summary:
    """Mean, sample std (ddof=1) and 95% t interval of the finite ``values``."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    bad = len(values) - len(finite)
    n = len(finite)
    if n == 0:
        return Summary(math.nan, math.nan, None, 0, bad)
    mean = math.fsum(finite) / n
    if n == 1:
        return Summary(mean, 0.0, None, 1, bad)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(mean, std, (mean - half, mean + half), n, bad)


@dataclasses.dataclass
class EntryStats:
    """An entry's statistics at epoch 2 (``"early"``) and at the last epoch (``"final"``).

    Attributes:
        entry: the entry's label.
        seeds: the seeds found for it.
        n_diverged: runs whose status is ``diverged``.
        epochs: ``{"early": 2, "final": E}`` (early is clamped to E).
        metrics: ``{"early"|"final": {metric: Summary}}``.
        rank: 1 for the best (see module doc).
    """

    entry: str
    seeds: list[int]
    n_diverged: int
    epochs: dict[str, int]
    metrics: dict[str, dict[str, Summary]]
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "rank": self.rank,
            "entry": self.entry,
            "seeds": list(self.seeds),
            "n_diverged": self.n_diverged,
            "epochs": dict(self.epochs),
            "metrics": {
                point: {m: s.to_dict() for m, s in per.items()}
                for point, per in self.metrics.items()
            },
        }


def _rank_key(s: EntryStats) -> tuple[float, float]:
    acc = s.metrics["final"]["val_acc"].mean
    loss = s.metrics["final"]["val_loss"].mean
    return (-acc if math.isfinite(acc) else math.inf, loss if math.isfinite(loss) else math.inf)


def summarise(results: Iterable[RunResult], early_epoch: int = 2) -> list[EntryStats]:
    """Per-entry statistics across seeds, ranked (entries in first-seen order among ties).

    Runs of one entry with different epoch counts are compared at the smallest one.
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
                m: summarise_values([r.at_epoch(m, epoch) for r in runs])
                for m in METRICS
                if all(m in r.metrics for r in runs)
            }
            for point, epoch in points.items()
        }
        diverged = sum(r.status != "ok" for r in runs)
        out.append(EntryStats(label, [r.seed for r in runs], diverged, points, metrics))
    out.sort(key=_rank_key)
    for i, s in enumerate(out, start=1):
        s.rank = i
    return out
