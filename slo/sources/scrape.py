"""SLIs from a direct scrape of ``/metrics``: totals since each process started, or the change
between two scrapes a window apart."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

from slo.sli import Histogram, ServiceSample

_PROBES = re.compile(r"^/(health|ready|metrics)$")
Counts = dict[tuple[str, str], dict[str, float]]


def _parse(text: str) -> Counts:
    """Per (service, route): requests, errors, and cumulative bucket counts keyed ``le:<bound>``."""
    counts: Counts = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            service, route = labels.get("service"), labels.get("route", "")
            if service is None or _PROBES.match(route):
                continue
            if sample.name == "http_requests_total":
                counts[service, route]["requests"] += sample.value
                if labels.get("status", "").startswith("5"):
                    counts[service, route]["errors"] += sample.value
            elif sample.name == "http_request_duration_seconds_bucket":
                counts[service, route][f"le:{float(labels['le'])!r}"] += sample.value
    return counts


def samples_from_metrics(
    text: str, earlier: str | None = None, seconds: float | None = None
) -> dict[str, ServiceSample]:
    """Builds samples from one exposition (or the difference from an ``earlier`` one)."""
    now = _parse(text)
    before = _parse(earlier) if earlier is not None else {}
    routes: dict[str, dict[str, ServiceSample]] = defaultdict(dict)
    for (service, route), values in now.items():
        old = before.get((service, route), {})
        delta = {key: value - old.get(key, 0.0) for key, value in values.items()}
        buckets = {float(key[3:]): v for key, v in delta.items() if key.startswith("le:")}
        routes[service][route] = ServiceSample(
            service=service,
            requests=delta.get("requests", 0.0),
            errors=delta.get("errors", 0.0),
            latency=Histogram(tuple(sorted(buckets.items(), key=lambda item: item[0])), exact=False),
            seconds=seconds,
        )
    samples = {}
    for service, by_route in routes.items():
        sample = ServiceSample.of_routes(service, by_route, seconds)
        bounds = sample.latency.bounds
        if bounds and not math.isinf(bounds[-1][0]):
            sample.notes.append("no +Inf bucket")
        samples[service] = sample
    return samples


def _fetch(client: httpx.Client, url: str) -> str:
    response = client.get(url, headers={"Accept": "text/plain; version=0.0.4"})
    response.raise_for_status()
    return response.text


def read_scrape(
    url: str, *, window_seconds: float | None = None, client: httpx.Client | None = None
) -> dict[str, ServiceSample]:
    """Scrapes ``url`` (``/metrics`` is added when missing); with a window, twice, that far apart."""
    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    own = client is None
    client = client or httpx.Client(timeout=10)
    try:
        first = _fetch(client, target)
        if not window_seconds:
            return samples_from_metrics(first)
        started = time.monotonic()
        time.sleep(window_seconds)
        second = _fetch(client, target)
        return samples_from_metrics(second, earlier=first, seconds=time.monotonic() - started)
    finally:
        if own:
            client.close()
