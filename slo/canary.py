"""Phase 6: the service side of a prefix against the monolith side, by statistics, and the next step.

Latency: a one-sided Mann-Whitney U test of "the service is slower than the monolith by more than
a margin" (the monolith's times are stretched by the margin before the test, a non-inferiority
test: a network hop that costs a millisecond is not a regression). Errors: a one-sided Fisher
exact test when counts are small, a two-proportion z-test otherwise. Either side with fewer than
the minimum samples makes the comparison INCONCLUSIVE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slo.scoring import Verdict

STEPS = (0, 10, 25, 50, 100)


@dataclass(frozen=True)
class LatencyComparison:
    verdict: Verdict
    statistic: float | None
    p_value: float | None
    service_median: float | None
    monolith_median: float | None
    n_service: int
    n_monolith: int
    detail: str


@dataclass(frozen=True)
class ErrorComparison:
    verdict: Verdict
    test: str
    p_value: float | None
    service_errors: int
    service_total: int
    monolith_errors: int
    monolith_total: int
    detail: str


def _median(values: Sequence[float]) -> float | None:
    return float(sorted(values)[len(values) // 2]) if values else None


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f}ms"


def compare_latency(
    service: Sequence[float],
    monolith: Sequence[float],
    *,
    alpha: float = 0.05,
    relative_margin: float = 0.0,
    absolute_margin: float = 0.0,
    min_samples: int = 20,
) -> LatencyComparison:
    """FAIL when the service side is significantly slower than the monolith side plus the margin."""
    n_s, n_m = len(service), len(monolith)
    med_s, med_m = _median(service), _median(monolith)
    if min(n_s, n_m) < max(min_samples, 1):
        return LatencyComparison(
            Verdict.INCONCLUSIVE,
            None,
            None,
            med_s,
            med_m,
            n_s,
            n_m,
            f"{n_s} service and {n_m} monolith samples; at least {min_samples} a side needed",
        )
    from scipy import stats  # imported here: it takes seconds, and only phase 6 needs it

    baseline = [m * (1 + relative_margin) + absolute_margin for m in monolith]
    result = stats.mannwhitneyu(service, baseline, alternative="greater")
    p = float(result.pvalue)
    slower = p < alpha
    detail = (
        f"median {_ms(med_s)} vs {_ms(med_m)} (n={n_s}/{n_m}); "
        f"Mann-Whitney U={float(result.statistic):g}, one-sided p={p:.3g} "
        f"{'<' if slower else '>='} {alpha:g}"
    )
    return LatencyComparison(
        Verdict.FAIL if slower else Verdict.PASS, float(result.statistic), p, med_s, med_m, n_s, n_m, detail
    )


def compare_errors(
    service_errors: int,
    service_total: int,
    monolith_errors: int,
    monolith_total: int,
    *,
    alpha: float = 0.05,
    min_samples: int = 20,
) -> ErrorComparison:
    """FAIL when the service side's error ratio is significantly higher than the monolith side's."""
    counts = (service_errors, service_total, monolith_errors, monolith_total)
    if min(service_total, monolith_total) < min_samples:
        return ErrorComparison(
            Verdict.INCONCLUSIVE, "none", None, *counts, f"at least {min_samples} requests a side needed"
        )
    if service_errors == 0 and monolith_errors == 0:
        return ErrorComparison(Verdict.PASS, "none", 1.0, *counts, "no errors on either side")
    from scipy import stats

    pooled = (service_errors + monolith_errors) / (service_total + monolith_total)
    expected = min(pooled * service_total, pooled * monolith_total, (1 - pooled) * min(service_total, monolith_total))
    if expected < 5:
        table = [[service_errors, service_total - service_errors], [monolith_errors, monolith_total - monolith_errors]]
        p = float(stats.fisher_exact(table, alternative="greater").pvalue)
        test = "Fisher exact"
    else:
        p1, p2 = service_errors / service_total, monolith_errors / monolith_total
        se = math.sqrt(pooled * (1 - pooled) * (1 / service_total + 1 / monolith_total))
        p = float(stats.norm.sf((p1 - p2) / se)) if se > 0 else 1.0
        test = "two-proportion z"
    worse = p < alpha
    detail = (
        f"{service_errors}/{service_total} vs {monolith_errors}/{monolith_total} errors; "
        f"{test} one-sided p={p:.3g} {'<' if worse else '>='} {alpha:g}"
    )
    return ErrorComparison(Verdict.FAIL if worse else Verdict.PASS, test, p, *counts, detail)


def next_weight(current: int, steps: Sequence[int] = STEPS) -> int:
    """The next step up from the current weight (10 → 25 → 50 → 100); 100 stays 100."""
    return next((step for step in sorted({0, *steps, 100}) if step > current), 100)


def previous_weight(current: int, steps: Sequence[int] = STEPS) -> int:
    """The step below the current weight (back to the last good step); 0 stays 0."""
    return next((step for step in sorted({0, *steps, 100}, reverse=True) if step < current), 0)
