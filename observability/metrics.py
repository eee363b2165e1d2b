"""Prometheus metrics: the RED set every service records, and helpers for business metrics.

Metric names follow the alert rules of the migration plan: ``http_requests_total`` and
``http_request_duration_seconds`` labelled service, route (the template), method and status.
Business metrics are named ``cerebrum_<thing>_<unit>`` and declared where they are counted.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

# Bucket edges include every latency objective of the plan (100, 150, 200, 300, 500 ms, 1 s), so
# that an SLI "share of requests under the objective" is read straight off a bucket.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)


def counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    """Returns the process's counter of that name, declaring it on first use."""
    return _get_or_create(Counter, name, documentation, labels)


def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
    """Returns the process's gauge of that name, declaring it on first use."""
    return _get_or_create(Gauge, name, documentation, labels)


def histogram(
    name: str, documentation: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    """Returns the process's histogram of that name, declaring it on first use."""
    return _get_or_create(Histogram, name, documentation, labels, buckets=buckets)


_declared: dict[str, Any] = {}


def _get_or_create(kind: type, name: str, documentation: str, labels: tuple[str, ...], **kw: Any) -> Any:
    existing = _declared.get(name)
    if existing is not None:
        if not isinstance(existing, kind):
            raise ValueError(f"metric {name} is already declared as {type(existing).__name__}")
        return existing
    metric = kind(name, documentation, labels, **kw)
    _declared[name] = metric
    return metric


class RedMetrics:
    """The request-rate, errors and duration metrics, with label children cached per series."""

    def __init__(self) -> None:
        self.requests = counter(
            "http_requests_total", "HTTP requests served.", ("service", "route", "method", "status")
        )
        self.duration = histogram(
            "http_request_duration_seconds",
            "Time from the first byte of a request to the last byte of its response.",
            ("service", "route", "method", "status"),
        )
        self.in_flight = gauge("http_requests_in_flight", "HTTP requests being served now.", ("service",))
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    def observe(self, service: str, route: str, method: str, status: int, seconds: float, trace_id: str | None) -> None:
        key = (service, route, method, str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.duration.labels(*key))
            self._children[key] = children
        exemplar = {"trace_id": trace_id} if trace_id else None
        children[0].inc(1, exemplar)
        children[1].observe(seconds, exemplar)


METRICS = RedMetrics()


def render_metrics(accept: str | None) -> tuple[bytes, str]:
    """Renders every metric, in OpenMetrics (with exemplars) unless only plain text is accepted."""
    if accept and "openmetrics" not in accept and "text/plain" in accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(REGISTRY), content_type
    return generate_openmetrics(REGISTRY), OPENMETRICS_TYPE
