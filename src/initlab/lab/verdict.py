"""The verdict of a comparison: which entries are best, tied with the best, worse, or failed.

On the final validation accuracy, per entry over its seeds:

1. **Failed** entries are set aside first: *diverged* (a non-finite loss in any seed), *at
   chance* (mean accuracy within :func:`chance_margin` of the chance rate, the share of the
   validation set's most frequent class: what a constant prediction scores) or *did not learn*
   (the mean training loss fell by less than :data:`LEARN_DROP` of its value at init).
2. The **best** is the entry with the highest mean accuracy among the others.
3. Each other entry is compared with the best by a **paired t-test over seeds**: the same seed
   gives both runs the same data order, so the per-seed differences
   ``d_s = acc(best, s) - acc(entry, s)`` cancel what the seed does to both. ``t = mean(d) /
   (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom, two-sided; the 95% t interval of the
   mean difference is reported with it. When every ``d_s`` is equal, ``p`` is 1 if they are 0
   and 0 otherwise (a gap with no spread).
4. The p-values are adjusted for the number of comparisons by **Holm's step-down method**
   (Holm 1979): sorted ascending, ``p_(i) * (m - i + 1)``, made monotone, capped at 1. An
   entry whose adjusted p is below ``alpha`` (0.05) is **worse**; otherwise it is **tied**
   with the best: not distinguishable with these seeds, which is not the same as equal.

With fewer than 3 seeds (:data:`MIN_SEEDS`) no test is run and the verdict says that no ranking
is trustworthy. The validation-set size is reported, with what one example is worth in points.

Example:
    >>> from initlab.lab.results import RunResult
    >>> def run(entry, seed, acc):
    ...     m = {"train_loss": [2.3, 0.2], "val_loss": [2.3, 0.3], "val_acc": [0.1, acc]}
    ...     cfg = {"data": {"n_val": 400, "chance": 0.1}}
    ...     return RunResult(f"{entry}{seed}", entry, {}, seed, cfg, m, versions={})
    >>> rs = [run("a", s, 0.90 + s / 100) for s in range(3)]
    >>> rs += [run("b", s, 0.80 + s / 100) for s in range(3)]
    >>> decide(rs).worse
    ['b']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .results import RunResult
from .stats import EntryStats, summarise, t_quantile_975, t_two_sided_p

__all__ = [
    "ALPHA",
    "LEARN_DROP",
    "MIN_SEEDS",
    "PairedTest",
    "Verdict",
    "chance_margin",
    "decide",
    "holm",
]

#: the significance level of the paired tests (after Holm's adjustment)
ALPHA = 0.05
#: fewer seeds than this: no test, no trustworthy ranking
MIN_SEEDS = 3
#: an entry "did not learn" when its training loss fell by less than this share of its init value
LEARN_DROP = 0.05


def chance_margin(chance: float, n_val: int | None) -> float:
    """How far above chance still counts as "at chance": 2 points, or two binomial standard
    errors of a chance-level classifier on ``n_val`` examples if that is more.

    ``max(0.02, 2 * sqrt(chance * (1 - chance) / n_val))``.

    Args:
        chance: the chance accuracy, a fraction.
        n_val: the validation-set size (None: 2 points).

    Returns:
        The margin, a fraction.

    Example:
        >>> round(chance_margin(0.1, 360), 4), chance_margin(0.1, None)
        (0.0316, 0.02)
    """
    if not n_val:
        return 0.02
    return max(0.02, 2.0 * math.sqrt(chance * (1.0 - chance) / n_val))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (same order in and out).

    Sorted ascending, ``p_(i) * (m - i + 1)`` (i from 1), made non-decreasing, capped at 1
    (Holm 1979, https://www.jstor.org/stable/4615733).

    Args:
        p_values: the unadjusted p-values of ``m`` tests.

    Returns:
        The adjusted p-values.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = round(running, 12)
    return out


@dataclasses.dataclass(frozen=True)
class PairedTest:
    """One entry against the best, paired by seed (module doc); accuracies as fractions.

    Attributes:
        entry, best: the labels.
        n: the seeds both have a finite value for.
        diff: mean of ``acc(best) - acc(entry)`` over those seeds.
        ci: its 95% t interval, within [-1, 1] (None for n < 2).
        p, p_holm: the two-sided p-value and its Holm adjustment.

    Example:
        >>> PairedTest("xavier", "kaiming", 3, 0.05, (0.01, 0.09), 0.02, 0.04).to_dict()["p_holm"]
        0.04
    """

    entry: str
    best: str
    n: int
    diff: float
    ci: tuple[float, float] | None
    p: float
    p_holm: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain data (NaN -> None)."""

        def clean(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "entry": self.entry,
            "best": self.best,
            "n": self.n,
            "diff": clean(self.diff),
            "ci95": None if self.ci is None else [clean(self.ci[0]), clean(self.ci[1])],
            "p": clean(self.p),
            "p_holm": clean(self.p_holm),
        }


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Which entries are best, tied with the best, worse, or failed (module doc).

    Attributes:
        best: the best entry's label (None when every entry failed).
        tied: entries not distinguishable from the best (adjusted p >= alpha), best first.
        worse: entries worse than the best (adjusted p < alpha).
        failed: ``{label: reason}``.
        tests: one :class:`PairedTest` per entry compared with the best.
        n_seeds: the most seeds any entry has.
        n_val: the validation-set size (None when the runs do not record it).
        chance: the chance accuracy (None when unknown).
        alpha: the significance level.
        trustworthy: False with fewer than :data:`MIN_SEEDS` seeds.
        text: the paragraph the reports open with.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> m = {"train_loss": [2.3, 0.2], "val_loss": [2.3, 0.3], "val_acc": [0.1, 0.9]}
        >>> runs = [RunResult(f"a{s}", "a", {}, s, {}, m, versions={}) for s in range(2)]
        >>> v = decide(runs)
        >>> v.best, v.trustworthy, "With 2 seeds no ranking is trustworthy" in v.text
        ('a', False, True)
    """

    best: str | None
    tied: list[str]
    worse: list[str]
    failed: dict[str, str]
    tests: list[PairedTest]
    n_seeds: int
    n_val: int | None
    chance: float | None
    alpha: float
    trustworthy: bool
    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return (
            f"Verdict(best={self.best!r}, tied={self.tied}, worse={len(self.worse)}, "
            f"failed={sorted(self.failed)}, seeds={self.n_seeds}, n_val={self.n_val})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``."""
        return {
            "text": self.text,
            "metric": "val_acc",
            "best": self.best,
            "tied": list(self.tied),
            "worse": list(self.worse),
            "failed": dict(self.failed),
            "tests": [t.to_dict() for t in self.tests],
            "n_seeds": self.n_seeds,
            "n_val": self.n_val,
            "chance": self.chance,
            "alpha": self.alpha,
            "test": "paired t-test over seeds, Holm-adjusted",
            "trustworthy": self.trustworthy,
        }


def _final(runs: Sequence[RunResult], metric: str) -> dict[int, float]:
    return {r.seed: r.final(metric) for r in runs if math.isfinite(r.final(metric))}


def _data_facts(results: Sequence[RunResult]) -> tuple[int | None, float | None]:
    data = results[0].config.get("data", {}) if results else {}
    n_val, chance = data.get("n_val"), data.get("chance")
    n_val = n_val if isinstance(n_val, int) and n_val > 0 else None
    chance = float(chance) if isinstance(chance, (int, float)) else None
    return n_val, chance


def _failure(
    runs: Sequence[RunResult], stats: EntryStats, chance: float | None, n_val: int | None
) -> str | None:
    diverged = sum(r.status != "ok" for r in runs)
    if diverged:
        return f"diverged in {diverged} of {len(runs)} seeds"
    acc = stats.metrics["final"]["val_acc"].mean
    if chance is not None and acc <= chance + chance_margin(chance, n_val):
        return f"at chance ({100 * acc:.1f}%, chance {100 * chance:.1f}%)"
    start = [r.metrics["train_loss"][0] for r in runs]
    end = [r.final("train_loss") for r in runs]
    if all(math.isfinite(v) for v in start + end) and sum(end) > (1 - LEARN_DROP) * sum(start):
        return (f"did not learn (training loss {sum(start) / len(start):.3g} -> "
                f"{sum(end) / len(end):.3g})")  # fmt: skip
    return None


def _paired(best: str, entry: str, a: dict[int, float], b: dict[int, float]) -> PairedTest:
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    if n == 0:
        return PairedTest(entry, best, 0, math.nan, None, math.nan)
    mean = math.fsum(d) / n
    if n == 1:
        return PairedTest(entry, best, 1, mean, None, math.nan)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return PairedTest(entry, best, n, mean, (mean, mean), p)
    se = sd / math.sqrt(n)
    half = t_quantile_975(n - 1) * se
    ci = (max(mean - half, -1.0), min(mean + half, 1.0))
    return PairedTest(entry, best, n, mean, ci, t_two_sided_p(mean / se, n - 1))


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _pts(v: float) -> str:
    return f"{100 * v:.1f}"


def _text(v: dict[str, Any], accs: dict[str, float], tests: dict[str, PairedTest]) -> str:
    n_val, n_seeds = v["n_val"], v["n_seeds"]
    where = (f"{n_val} validation examples, so one example is {100 / n_val:.2f} points"
             if n_val else "validation-set size not recorded")  # fmt: skip
    parts = [f"Verdict on final validation accuracy ({n_seeds} seeds; {where})."]
    if not v["trustworthy"]:
        parts.append(
            f"With {n_seeds} seed{'s' if n_seeds != 1 else ''} no ranking is trustworthy "
            f"(no test is run below {MIN_SEEDS} seeds; use --seeds 5 or more)."
        )
    if v["best"] is None:
        parts.append("Every entry failed.")
    elif not v["trustworthy"]:
        parts.append(f"Highest mean: {v['best']} ({_pct(accs[v['best']])}).")
    else:
        parts.append(f"Best: {v['best']} ({_pct(accs[v['best']])}).")
        method = f"paired t-test over seeds, Holm-adjusted, alpha {v['alpha']:g}"
        if v["tied"]:
            tied = ", ".join(f"{e} ({_pct(accs[e])}, p={tests[e].p_holm:.2g})" for e in v["tied"])
            parts.append(f"Statistically tied with it ({method}): {tied}.")
        else:
            parts.append(f"No entry is tied with it ({method}).")
        if v["worse"]:
            worse = ", ".join(
                f"{e} (-{_pts(tests[e].diff)} points, p={tests[e].p_holm:.2g})" for e in v["worse"]
            )
            parts.append(f"Worse: {worse}.")
    if v["failed"]:
        failed = "; ".join(f"{e}: {why}" for e, why in v["failed"].items())
        parts.append(f"Failed: {failed}.")
    if v["trustworthy"] and v["tied"]:
        parts.append(
            f"With {n_seeds} seeds only large, consistent gaps are detected: tied means not "
            "distinguishable here, not equal."
        )
    return " ".join(parts)


def decide(
    results: Iterable[RunResult],
    stats: Sequence[EntryStats] | None = None,
    alpha: float = ALPHA,
) -> Verdict:
    """The verdict of a comparison's runs (module doc).

    Args:
        results: the runs (entries x seeds); their ``config["data"]`` gives the validation-set
            size and the chance rate when recorded.
        stats: their :func:`~initlab.lab.stats.summarise` (computed when None).
        alpha: the significance level after Holm's adjustment.

    Returns:
        A :class:`Verdict`; ``str(verdict)`` is the paragraph.

    Example:
        >>> from initlab.lab.results import RunResult
        >>> def run(entry, seed, acc):
        ...     m = {"train_loss": [2.3, 0.2], "val_loss": [2.3, 0.3], "val_acc": [0.1, acc]}
        ...     return RunResult(f"{entry}{seed}", entry, {}, seed, {}, m, versions={})
        >>> rs = [run("a", s, 0.90 + s / 100) for s in range(3)]
        >>> rs += [run("b", s, 0.80 + s / 100) for s in range(3)]
        >>> v = decide(rs)
        >>> v.best, v.worse, v.tests[0].p
        ('a', ['b'], 0.0)
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    results = list(results)
    stats = list(stats) if stats is not None else summarise(results)
    n_val, chance = _data_facts(results)
    by_entry: dict[str, list[RunResult]] = {}
    for r in results:
        by_entry.setdefault(r.entry, []).append(r)
    n_seeds = max((len(s.seeds) for s in stats), default=0)
    accs = {s.entry: s.metrics["final"]["val_acc"].mean for s in stats}
    failed = {s.entry: why for s in stats
              if (why := _failure(by_entry[s.entry], s, chance, n_val))}  # fmt: skip
    alive = [s.entry for s in stats if s.entry not in failed and math.isfinite(accs[s.entry])]
    best = alive[0] if alive else None
    trustworthy = n_seeds >= MIN_SEEDS
    tests: list[PairedTest] = []
    tied: list[str] = []
    worse: list[str] = []
    if best is not None and trustworthy:
        a = _final(by_entry[best], "val_acc")
        raw = [_paired(best, e, a, _final(by_entry[e], "val_acc")) for e in alive[1:]]
        adjusted = holm([1.0 if math.isnan(t.p) else t.p for t in raw])
        tests = [dataclasses.replace(t, p_holm=p) for t, p in zip(raw, adjusted, strict=True)]
        for t in tests:
            (worse if t.p_holm < alpha and t.diff > 0 else tied).append(t.entry)
    elif best is not None:
        tied = alive[1:]
    fields = {"best": best, "tied": tied, "worse": worse, "failed": failed, "n_seeds": n_seeds,
              "n_val": n_val, "alpha": alpha, "trustworthy": trustworthy}  # fmt: skip
    text = _text(fields, accs, {t.entry: t for t in tests})
    return Verdict(best, tied, worse, failed, tests, n_seeds, n_val, chance, alpha, trustworthy,
                   text)  # fmt: skip
