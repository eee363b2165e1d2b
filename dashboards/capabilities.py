"""What each service has, and so which rows its dashboard shows.

One table, declared here rather than read from the services at build time: building the
dashboards imports no service. tests/observability_as_code/test_dashboards.py holds it to the
code both ways: it runs the platform, and fails when a service emits something the table denies
(a panel missing) or a panel of the table queries a metric its service never emits (a dead panel).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.metric_names import SERVICES

BEHIND_GATEWAY = tuple(s for s in SERVICES if s != "gateway")


@dataclass(frozen=True)
class Capabilities:
    upstreams: tuple[str, ...] = ()
    """Services it calls through the kit's resilient client (calls, latency, breakers)."""
    caches: tuple[str, ...] = ()
    """Its read-through caches, by the ``cache`` label they count under."""
    publishes: bool = False
    """Records events in its outbox, which the relay publishes."""
    consumes: bool = False
    """Handles events from the broker (its inbox, retries and dead letters)."""
    checks_sessions: bool = True
    """Looks each request's session up in Redis, and lets it through unchecked while Redis is down."""


CAPABILITIES: dict[str, Capabilities] = {
    "users": Capabilities(publishes=True),
    "courses": Capabilities(caches=("catalogue", "course", "curriculum"), publishes=True, consumes=True),
    "enrollments": Capabilities(upstreams=("users", "courses", "payments"), publishes=True, consumes=True),
    "payments": Capabilities(publishes=True),
    "analytics": Capabilities(consumes=True),
    # communication declares an outbox table but records no event in it: nothing to show.
    "communication": Capabilities(consumes=True),
    "assessments": Capabilities(publishes=True),
    # The gateway verifies tokens itself and leaves the revocation check to the services.
    "gateway": Capabilities(upstreams=BEHIND_GATEWAY, checks_sessions=False),
}
