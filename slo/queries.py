"""PromQL for the SLIs, shared by the generated rules and the Prometheus source of the evaluator.

The series are the ones every service emits (``http_requests_total`` and
``http_request_duration_seconds``, labelled service, route, method, status); probes and scrapes
are left out (``observability.metrics.NOT_PROBES``, which the alert rules share) so that they do
not dilute a service's errors.
"""

from __future__ import annotations

import re

from observability.metrics import NOT_PROBES
from slo.spec import AvailabilityObjective, LatencyObjective, RouteScope

REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"
NOT_5XX = 'status!~"5.."'
IS_5XX = 'status=~"5.."'


def selector(service: str, *matchers: str) -> str:
    return "{" + ",".join([f'service="{service}"', NOT_PROBES, *matchers]) + "}"


def _alternatives(values: tuple[str, ...]) -> str:
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in values)


def scope_matchers(scope: RouteScope | None) -> tuple[str, ...]:
    """The route matcher of an objective that counts only some routes (none when it counts all)."""
    if scope is None:
        return ()
    if scope.only:
        return (f'route=~"{_alternatives(scope.only)}"',)
    return (f'route!~"{_alternatives(scope.excluding)}"',)


def le_matcher(threshold_seconds: float) -> str:
    """Matches the bucket at the threshold however it is written (``0.1``; ``1`` or ``1.0``)."""
    text = repr(float(threshold_seconds))
    spellings = [text]
    if text.endswith(".0"):
        spellings.insert(0, text[:-2])
    return f'le=~"{_alternatives(tuple(spellings))}"'


def error_ratio(objective: AvailabilityObjective | LatencyObjective, service: str, window: str) -> str:
    """The share of bad events over a window: server errors, or requests slower than the threshold."""
    scope = scope_matchers(objective.routes)
    if isinstance(objective, LatencyObjective):
        fast = f"sum(rate({DURATION}_bucket{selector(service, *scope, le_matcher(objective.threshold))}[{window}]))"
        total = f"sum(rate({DURATION}_count{selector(service, *scope)}[{window}]))"
    else:
        fast = f"sum(rate({REQUESTS}{selector(service, *scope, NOT_5XX)}[{window}]))"
        total = f"sum(rate({REQUESTS}{selector(service, *scope)}[{window}]))"
    # Written as 1 - good/total: a service that never failed has no 5xx series at all, and
    # errors/total would then be empty instead of 0.
    return f"1 - ({fast} / {total})"


def requests_in(objective: AvailabilityObjective | LatencyObjective, service: str, window: str) -> str:
    """How many requests the SLI counted over a window (the denominator of its error ratio)."""
    counted = f"{DURATION}_count" if isinstance(objective, LatencyObjective) else REQUESTS
    return f"sum(increase({counted}{selector(service, *scope_matchers(objective.routes))}[{window}]))"


def increase_queries(service: str, window: str) -> dict[str, str]:
    """Instant queries for one service's counts by route over a window (the evaluator's Prometheus source)."""
    return {
        "requests": f"sum by (route) (increase({REQUESTS}{selector(service)}[{window}]))",
        "errors": f"sum by (route) (increase({REQUESTS}{selector(service, IS_5XX)}[{window}]))",
        "buckets": f"sum by (route, le) (increase({DURATION}_bucket{selector(service)}[{window}]))",
    }
