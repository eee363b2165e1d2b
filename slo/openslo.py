"""Our specs as OpenSLO v1 documents (a Service, and one SLO per objective).

availability and latency become ratio SLOs (``ratioMetric``, good over total, ``Occurrences``
budgeting over a rolling window); error rate and throughput become threshold SLOs
(``thresholdMetric`` with ``op`` lte / gte). What OpenSLO has no field for (warning bound,
minimum requests, key, weight) rides along as ``cerebrum.academy/*`` annotations.
"""

from __future__ import annotations

from typing import Any

from slo import queries
from slo.durations import format_duration
from slo.spec import AvailabilityObjective, ErrorRateObjective, LatencyObjective, ServiceSpec

API = "openslo/v1"


def _prometheus(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _indicator(spec: ServiceSpec, objective: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SLI (inline) and the objective entry of one objective."""
    requests = f"sum(rate({queries.REQUESTS}{queries.selector(spec.service)}[1m]))"
    if isinstance(objective, AvailabilityObjective | LatencyObjective):
        if isinstance(objective, LatencyObjective):
            matcher = queries.le_matcher(objective.threshold)
            good = f"sum(rate({queries.DURATION}_bucket{queries.selector(spec.service, matcher)}[1m]))"
            total = f"sum(rate({queries.DURATION}_count{queries.selector(spec.service)}[1m]))"
        else:
            good = f"sum(rate({queries.REQUESTS}{queries.selector(spec.service, queries.NOT_5XX)}[1m]))"
            total = requests
        sli = {"ratioMetric": {"counter": True, "good": _prometheus(good), "total": _prometheus(total)}}
        return sli, {"displayName": objective.name, "target": objective.target}
    if isinstance(objective, ErrorRateObjective):
        errors = f"sum(rate({queries.REQUESTS}{queries.selector(spec.service, queries.IS_5XX)}[1m]))"
        sli = {"thresholdMetric": _prometheus(f"{errors} / {requests}")}
        return sli, {"displayName": objective.name, "op": "lte", "value": objective.target}
    sli = {"thresholdMetric": _prometheus(requests)}
    return sli, {"displayName": objective.name, "op": "gte", "value": objective.target}


def to_openslo(spec: ServiceSpec) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": API,
            "kind": "Service",
            "metadata": {"name": spec.service, "displayName": spec.display_name},
            "spec": {"description": f"Gateway prefixes: {', '.join(spec.prefixes)}"},
        }
    ]
    for objective in spec.objectives:
        sli, entry = _indicator(spec, objective)
        documents.append(
            {
                "apiVersion": API,
                "kind": "SLO",
                "metadata": {
                    "name": f"{spec.service}-{objective.name}",
                    "displayName": f"{spec.display_name} {objective.name}",
                    "annotations": {
                        "cerebrum.academy/warning": str(objective.warning),
                        "cerebrum.academy/minimum-requests": str(objective.minimum_requests),
                        "cerebrum.academy/key": str(objective.key).lower(),
                        "cerebrum.academy/weight": f"{objective.weight:g}",
                    },
                },
                "spec": {
                    "description": objective.description,
                    "service": spec.service,
                    "indicator": {"metadata": {"name": f"{spec.service}-{objective.sli}"}, "spec": sli},
                    "timeWindow": [{"duration": format_duration(spec.window), "isRolling": True}],
                    "budgetingMethod": "Occurrences",
                    "objectives": [entry],
                },
            }
        )
    return documents
