"""Prometheus metrics: the RED set every service records, and helpers for business metrics.

Metric names follow the alert rules of the migration plan: ``http_requests_total`` and
``http_request_duration_seconds`` labelled service, route (the template), method and status.
Business metrics are named ``cerebrum_<thing>_<unit>`` and declared where they are counted.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Exemplar

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

PROBE_ROUTES = ("/health", "/ready", "/metrics")
"""Routes that answer liveness and readiness probes and Prometheus's scrapes, not users."""
NOT_PROBES = 'route!~"' + "|".join(PROBE_ROUTES) + '"'
"""The label matcher that keeps only served traffic: every alert, SLO and recording rule that reads
``http_requests_total`` or ``http_request_duration_seconds`` uses it, so that steady probe traffic
never dilutes a route that fails every request."""


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


def at_zero(metric: Counter, *children: str | tuple[str, ...]) -> Counter:
    """Creates the counter's children for known label values, so each is exported at 0 from start-up.

    prometheus-client creates a labelled child on its first increment, so without this the first
    event of each kind is a new series at 1, which ``increase()`` and ``rate()`` never count.
    """
    for values in children:
        metric.labels(*((values,) if isinstance(values, str) else values))
    return metric


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


class _Series:
    """One (service, route, method, status) series: its counter and its histogram bucket values.

    prometheus-client validates the exemplar and searches the buckets on every call; ours is
    always ``{"trace_id": <32 hex>}`` (valid by construction), so a series writes its values
    directly, through the same value objects (and locks) the public ``inc``/``observe`` use.
    """

    __slots__ = ("count", "sum", "buckets", "bounds", "counter", "histogram")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter, self.histogram = counter, histogram
        self.count = getattr(counter, "_value", None)
        self.sum = getattr(histogram, "_sum", None)
        self.buckets = getattr(histogram, "_buckets", None)
        self.bounds = getattr(histogram, "_upper_bounds", None)

    def record(self, seconds: float, trace_id: str | None) -> None:
        if self.count is None or self.sum is None or self.buckets is None or self.bounds is None:
            exemplar = {"trace_id": trace_id} if trace_id else None
            self.counter.inc(1, exemplar)
            self.histogram.observe(seconds, exemplar)
            return
        bucket = self.buckets[bisect_left(self.bounds, seconds)]
        self.count.inc(1)
        self.sum.inc(seconds)
        bucket.inc(1)
        if trace_id:
            labels, now = {"trace_id": trace_id}, time.time()
            self.count.set_exemplar(Exemplar(labels, 1, now))
            bucket.set_exemplar(Exemplar(labels, seconds, now))


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
        # Shadow traffic (a gateway's mirror, marked X-Cerebrum-Shadow) has series of its own, so
        # that no SLO, alert or business panel reading the pair above ever counts it.
        self.shadow_requests = counter(
            "http_shadow_requests_total",
            "Shadow (mirrored) HTTP requests served.",
            ("service", "route", "method", "status"),
        )
        self.shadow_duration = histogram(
            "http_shadow_request_duration_seconds",
            "Time to serve a shadow (mirrored) HTTP request.",
            ("service", "route", "method", "status"),
        )
        self._series: dict[tuple[str, str, str, int, bool], _Series] = {}

    def observe(
        self,
        service: str,
        route: str,
        method: str,
        status: int,
        seconds: float,
        trace_id: str | None,
        shadow: bool = False,
    ) -> None:
        key = (service, route, method, status, shadow)
        series = self._series.get(key)
        if series is None:
            labels = (service, route, method, str(status))
            if shadow:
                series = _Series(self.shadow_requests.labels(*labels), self.shadow_duration.labels(*labels))
            else:
                series = _Series(self.requests.labels(*labels), self.duration.labels(*labels))
            self._series[key] = series
        series.record(seconds, trace_id)


METRICS = RedMetrics()


def render_metrics(accept: str | None) -> tuple[bytes, str]:
    """Renders every metric, in OpenMetrics (with exemplars) unless only plain text is accepted."""
    if accept and "openmetrics" not in accept and "text/plain" in accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(REGISTRY), content_type
    return generate_openmetrics(REGISTRY), OPENMETRICS_TYPE
