"""One dashboard per service, built from what the service has (dashboards/capabilities.py).

Every service's dashboard starts with the same rows (now, RED by route); then one row for each
thing it has — calls to other services, a cache, an outbox, consumed events, session checks —
and last what only it has (``service_extras.EXTRAS``: the gateway's split, the payments outcomes, ...). A row
for something the service lacks would be a panel that can never show data, so there is none.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards import metric_names as m
from dashboards.capabilities import CAPABILITIES, Capabilities
from dashboards.panels import RATE, Queryable, breaker_states, graph, new_dashboard, query, single
from dashboards.promql import error_ratio, quantile, share, sum_increase, sum_rate
from dashboards.service_extras import EXTRAS

Row = tuple[str, list[Queryable]]


def service_dashboard(service: str) -> dashboard.Dashboard:
    """Builds the dashboard of one service: the rows every service has, then the rows of what it has."""
    has = CAPABILITIES[service]
    board = new_dashboard(
        f"cerebrum-service-{service}",
        f"Cerebrum / Service / {service}",
        f"The {service} service: {'; '.join(_contents(has))}. "
        "Exemplar dots on the graphs open the request's trace in Jaeger.",
        "service",
        service,
    )
    for title, panels in rows(service, has):
        board = board.with_row(dashboard.Row(title))
        for panel in panels:
            board = board.with_panel(panel)
    return board


def _contents(has: Capabilities) -> list[str]:
    said = ["traffic, errors and latency by route"]
    if has.upstreams:
        said.append(f"its calls to {_listing(has.upstreams)}")
    if has.caches:
        said.append("its cache")
    if has.publishes:
        said.append("the events it publishes")
    if has.consumes:
        said.append("the events it consumes")
    return said


def _listing(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def rows(service: str, has: Capabilities) -> list[Row]:
    """The dashboard's rows, titled, in order."""
    svc = f'service="{service}"'
    found: list[Row] = [("Now", _now(svc)), ("RED by route", _red(svc))]
    if has.upstreams:
        found.append(("Calls to other services", _calls(svc, has.upstreams)))
    if has.caches:
        found.append(("Cache", _cache(svc)))
    if has.publishes:
        found.append(("Events published", _published(svc)))
    if has.consumes:
        found.append(("Events consumed", _consumed(svc)))
    if has.checks_sessions:
        found.append(("Sessions", _sessions(svc)))
    extras = EXTRAS.get(service)
    if extras is not None:
        found.append((f"Only in {service}", list(extras(svc))))
    return found


def _now(svc: str) -> list[Queryable]:
    return [
        single("Requests / s", query(f"sum({m.SERVICE_REQUESTS_RATE5M}{{{svc}}})"), unit="reqps"),
        single(
            "5xx share",
            query(f"sum({m.SERVICE_ERROR_RATIO_RATE5M}{{{svc}}})"),
            unit="percentunit",
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        single(
            "p95 latency",
            query(f"max({m.SERVICE_P95_5M}{{{svc}}})"),
            unit="s",
            thresholds=[(None, "green"), (0.3, "orange"), (0.5, "red")],
        ),
        single("In flight", query(f"sum({m.HTTP_IN_FLIGHT}{{{svc}}})")),
    ]


def _red(svc: str) -> list[Queryable]:
    return [
        graph(
            "Requests / s by route and status",
            query(sum_rate(m.HTTP_REQUESTS, RATE, ("route", "status"), svc), "{{route}} {{status}}", exemplar=True),
            unit="reqps",
            width=8,
        ),
        graph(
            "5xx share by route",
            query(error_ratio(m.HTTP_REQUESTS, RATE, ("route",), svc), "{{route}}"),
            unit="percentunit",
            width=8,
        ),
        graph(
            "p95 latency by route",
            query(quantile(0.95, m.HTTP_DURATION_BUCKET, RATE, ("route",), svc), "{{route}}", exemplar=True),
            unit="s",
            width=8,
        ),
    ]


def _calls(svc: str, upstreams: tuple[str, ...]) -> list[Queryable]:
    return [
        graph(
            "Calls to other services / s, by outcome",
            query(sum_rate(m.DEPENDENCY_REQUESTS, RATE, ("upstream", "outcome"), svc), "{{upstream}} {{outcome}}"),
            unit="ops",
            description=f"Calls to {_listing(upstreams)} through the resilient client: 'breaker_open' were "
            "answered at once by an open circuit breaker, without a call.",
            width=8,
        ),
        graph(
            "p95 of calls to other services",
            query(
                quantile(0.95, m.DEPENDENCY_DURATION_BUCKET, RATE, ("upstream",), svc), "{{upstream}}", exemplar=True
            ),
            unit="s",
            width=8,
        ),
        breaker_states(
            "Circuit breakers",
            query(f"max by (upstream) ({m.CIRCUIT_BREAKER_STATE}{{{svc}}})", "{{upstream}}"),
            width=8,
        ),
    ]


def _cache(svc: str) -> list[Queryable]:
    return [
        graph(
            "Cache hit ratio",
            query(
                share(
                    sum_rate(m.CACHE_REQUESTS, RATE, ("cache",), svc, 'result="hit"'),
                    sum_rate(m.CACHE_REQUESTS, RATE, ("cache",), svc),
                ),
                "{{cache}}",
            ),
            unit="percentunit",
            max_value=1,
        ),
        graph(
            "Cache lookups / s",
            query(sum_rate(m.CACHE_REQUESTS, RATE, ("cache", "result"), svc), "{{cache}} {{result}}"),
            unit="ops",
        ),
    ]


def _published(svc: str) -> list[Queryable]:
    return [
        graph(
            "Outbox: oldest unsent event",
            query(f"max({m.OUTBOX_OLDEST_AGE}{{{svc}}})", "age"),
            unit="s",
            description="The relay publishes within a second or two; a growing age means the broker "
            "refuses events (see the OutboxBacklog runbook).",
            width=8,
        ),
        graph("Outbox: events waiting", query(f"sum({m.OUTBOX_PENDING}{{{svc}}})", "waiting"), width=8),
        graph(
            "Events published / s",
            query(sum_rate(m.EVENTS_PUBLISHED, RATE, ("event",), svc), "{{event}}"),
            unit="ops",
            width=8,
        ),
    ]


def _consumed(svc: str) -> list[Queryable]:
    return [
        graph(
            "Events consumed / s by outcome",
            query(sum_rate(m.EVENTS_CONSUMED, RATE, ("event", "outcome"), svc), "{{event}} {{outcome}}"),
            unit="ops",
            description="'duplicate': delivered again and dropped by the inbox; harmless.",
        ),
        graph(
            "Consumer retries and dead letters",
            query(sum_increase(m.EVENTS_RETRIED, RATE, ("event",), svc), "retried {{event}}"),
            query(sum_increase(m.EVENTS_DEAD_LETTERED, RATE, ("event",), svc), "dead-lettered {{event}}"),
        ),
    ]


def _sessions(svc: str) -> list[Queryable]:
    return [
        graph(
            "Requests let through without the revocation check",
            query(sum_rate(m.AUTH_REVOCATION_SKIPPED, RATE, (), svc), "unchecked"),
            unit="ops",
            description="Non-zero while Redis is down: a signed-out session is not refused until it is back.",
            width=24,
        )
    ]
