"""Judges measured SLIs against the specs: a verdict, budget left and burn rate per objective.

PASS meets the target, WARN meets only the warning bound, FAIL meets neither, INCONCLUSIVE has
fewer requests than the objective's ``minimum_requests`` (no data never passes), and SKIPPED is a
throughput objective outside a capacity run. Services and the whole evaluation are scored as
Keptn does (slo/scoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from slo.burn import burn_rate
from slo.scoring import KEPTN, Score, Thresholds, Verdict, score
from slo.sli import ServiceSample
from slo.spec import (
    AvailabilityObjective,
    ErrorRateObjective,
    LatencyObjective,
    ServiceSpec,
    ThroughputObjective,
)

AnyObjective = AvailabilityObjective | LatencyObjective | ErrorRateObjective | ThroughputObjective


@dataclass(frozen=True)
class ObjectiveResult:
    service: str
    objective: str
    sli: str
    verdict: Verdict
    target: float
    warning: float
    comparison: str
    """``>=`` when higher is better, ``<=`` when lower is."""
    measured: float | None
    unit: str
    samples: float
    minimum: int
    key: bool
    weight: float
    budget_remaining: float | None = None
    burn_rate: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class ServiceResult:
    service: str
    verdict: Verdict
    score: float | None
    objectives: list[ObjectiveResult]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    source: str
    window: str
    services: list[ServiceResult]
    verdict: Verdict
    score: float | None
    reason: str
    thresholds: Thresholds = KEPTN
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def objectives(self) -> list[ObjectiveResult]:
        return [o for s in self.services for o in s.objectives]


def _grade(measured: float, target: float, warning: float, higher_is_better: bool) -> Verdict:
    if higher_is_better:
        return Verdict.PASS if measured >= target else Verdict.WARN if measured >= warning else Verdict.FAIL
    return Verdict.PASS if measured <= target else Verdict.WARN if measured <= warning else Verdict.FAIL


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}ms"


def _measure(objective: AnyObjective, sample: ServiceSample) -> tuple[float | None, bool, str]:
    """The measured value, whether higher is better, and a line of detail."""
    if isinstance(objective, ThroughputObjective):
        return sample.throughput, True, "" if sample.seconds else "the source cannot tell how long the window lasted"
    if isinstance(objective, LatencyObjective):
        p = sample.latency.quantile(objective.target)
        detail = f"p{objective.target * 100:g} {_ms(p)} (objective {_ms(objective.threshold)})"
        return sample.latency.share_within(objective.threshold), True, detail
    errors = f"{sample.errors:g} server errors in {sample.requests:g} requests"
    ratio = sample.errors / sample.requests if sample.requests else None
    if isinstance(objective, AvailabilityObjective):
        return (None if ratio is None else 1 - ratio), True, errors
    return ratio, False, errors


def _burn(objective: AnyObjective, measured: float | None) -> float | None:
    if measured is None:
        return None
    if isinstance(objective, AvailabilityObjective | LatencyObjective):
        return burn_rate(1 - measured, objective.error_budget)
    if isinstance(objective, ErrorRateObjective) and objective.target > 0:
        return burn_rate(measured, objective.target)
    return None


def judge(objective: AnyObjective, sample: ServiceSample, *, capacity: bool = False) -> ObjectiveResult:
    """Judges one objective on one service's sample (on the routes it counts, when it is scoped)."""
    sample = sample.scoped(objective.routes)
    samples = sample.latency.count if isinstance(objective, LatencyObjective) else sample.requests
    measured, higher, detail = _measure(objective, sample)
    burn = _burn(objective, measured)
    if isinstance(objective, ThroughputObjective) and not capacity:
        verdict, detail = Verdict.SKIPPED, "judged in capacity runs only (--capacity)"
    elif (measured is None or samples < objective.minimum_requests) and objective.routes and not objective.key:
        # A side objective for a few routes (sign-ins) leaves the service's verdict to the others
        # when those routes saw little traffic, instead of making the whole service unknown.
        verdict = Verdict.SKIPPED
        detail = f"too few requests to its routes: {samples:g} of {objective.minimum_requests}"
    elif measured is None or samples < objective.minimum_requests:
        verdict, detail = Verdict.INCONCLUSIVE, f"too few requests: {samples:g} of {objective.minimum_requests} needed"
    else:
        verdict = _grade(measured, objective.target, objective.warning, higher)
    return ObjectiveResult(
        service=sample.service,
        objective=objective.name,
        sli=objective.sli,
        verdict=verdict,
        target=objective.target,
        warning=objective.warning,
        comparison=">=" if higher else "<=",
        measured=measured,
        unit="req/s" if isinstance(objective, ThroughputObjective) else "ratio",
        samples=samples,
        minimum=objective.minimum_requests,
        key=objective.key,
        weight=objective.weight,
        budget_remaining=None if burn is None else 1 - burn,
        burn_rate=burn,
        detail=detail,
    )


def evaluate(
    specs: dict[str, ServiceSpec],
    samples: dict[str, ServiceSample],
    *,
    source: str,
    window: str,
    capacity: bool = False,
    thresholds: Thresholds = KEPTN,
) -> Evaluation:
    """Judges every objective of every spec; a service the source did not see is INCONCLUSIVE."""
    services = []
    for name, spec in specs.items():
        sample = samples.get(name, ServiceSample(service=name))
        results = [judge(objective, sample, capacity=capacity) for objective in spec.objectives]
        service_score = score(results, thresholds)
        services.append(ServiceResult(name, service_score.verdict, service_score.score, results, list(sample.notes)))
    overall: Score = score([o for s in services for o in s.objectives], thresholds)
    return Evaluation(
        source=source,
        window=window,
        services=services,
        verdict=overall.verdict,
        score=overall.score,
        reason=overall.reason,
        thresholds=thresholds,
    )
