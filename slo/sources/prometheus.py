"""SLIs from Prometheus over its HTTP API: counts over a window with ``increase()``."""

from __future__ import annotations

import math
from typing import Any

import httpx

from slo import queries
from slo.durations import parse_duration
from slo.sli import Histogram, ServiceSample


class PrometheusError(RuntimeError):
    pass


class PrometheusClient:
    """A small client of the Prometheus HTTP API (instant queries and alerts)."""

    def __init__(self, url: str, *, client: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)

    def _get(self, path: str, **params: str) -> Any:
        try:
            response = self.client.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {exc}") from exc
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} failed ({response.status_code}): {body.get('error', response.text[:200])}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", query=promql)
        if data.get("resultType") != "vector":
            raise PrometheusError(f"expected a vector from {promql!r}, got {data.get('resultType')}")
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, promql: str) -> float:
        """The single value of a query, 0 when it returns nothing (no such series: nothing happened)."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else 0.0

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def close(self) -> None:
        self.client.close()


def _read_service(client: PrometheusClient, service: str, window: str, seconds: float) -> ServiceSample:
    q = queries.increase_queries(service, window)
    routes: dict[str, ServiceSample] = {}

    def route(row: dict[str, Any]) -> ServiceSample:
        name = row["metric"].get("route", "")
        return routes.setdefault(name, ServiceSample(service=service, seconds=seconds))

    for row in client.query(q["requests"]):
        route(row).requests = float(row["value"][1])
    for row in client.query(q["errors"]):
        route(row).errors = float(row["value"][1])
    buckets: dict[str, list[tuple[float, float]]] = {}
    for row in client.query(q["buckets"]):
        value = float(row["value"][1])
        if not math.isnan(value):
            route(row)
            buckets.setdefault(row["metric"].get("route", ""), []).append((float(row["metric"]["le"]), value))
    for name, bounds in buckets.items():
        routes[name].latency = Histogram(tuple(sorted(bounds)), exact=False)
    return ServiceSample.of_routes(service, routes, seconds)


def read_prometheus(client: PrometheusClient, services: list[str], window: str) -> dict[str, ServiceSample]:
    """Reads each service's requests, server errors and latency buckets by route over the window."""
    seconds = parse_duration(window)
    return {service: _read_service(client, service, window, seconds) for service in services}
