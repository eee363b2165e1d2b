"""What a source measured for one service: request and error counts and a latency histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slo.spec import RouteScope


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts at upper bounds (seconds), as Prometheus buckets or Locust's recorded times.

    ``exact`` bounds are observed values (Locust keeps every response time, rounded); otherwise they
    are bucket edges and values between edges are interpolated linearly, as ``histogram_quantile``.
    """

    bounds: tuple[tuple[float, float], ...]
    exact: bool = False

    @classmethod
    def from_counts(cls, counts: dict[float, float], *, exact: bool) -> Histogram:
        """From per-value (not cumulative) counts."""
        running, bounds = 0.0, []
        for bound in sorted(counts):
            running += counts[bound]
            bounds.append((bound, running))
        return cls(tuple(bounds), exact=exact)

    @classmethod
    def merged(cls, histograms: list[Histogram]) -> Histogram:
        """Several histograms of the same kind as one (the routes of a service, say)."""
        if not histograms:
            return cls(())
        bounds = sorted({bound for h in histograms for bound, _ in h.bounds})
        return cls(tuple((b, sum(h.cumulative_at(b) for h in histograms)) for b in bounds), exact=histograms[0].exact)

    def cumulative_at(self, bound: float) -> float:
        """How many observations are at or below ``bound`` (the count at the nearest edge below)."""
        below = 0.0
        for edge, cumulative in self.bounds:
            if edge > bound:
                break
            below = cumulative
        return below

    @property
    def count(self) -> float:
        return self.bounds[-1][1] if self.bounds else 0.0

    def share_within(self, threshold: float) -> float | None:
        """The share of observations at or below ``threshold`` seconds."""
        total = self.count
        if total <= 0:
            return None
        below, lower_bound, lower_count = 0.0, 0.0, 0.0
        for bound, cumulative in self.bounds:
            if bound <= threshold * (1 + 1e-9):
                below, lower_bound, lower_count = cumulative, bound, cumulative
                continue
            if not self.exact and math.isfinite(bound):
                # Between two bucket edges: assume the observations spread evenly across the bucket.
                below = lower_count + (cumulative - lower_count) * (threshold - lower_bound) / (bound - lower_bound)
            break
        return min(below / total, 1.0)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds (nearest rank on exact values, interpolated in buckets)."""
        total = self.count
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.bounds:
            if cumulative >= rank:
                if self.exact:
                    return bound
                if not math.isfinite(bound):
                    return lower_bound  # as histogram_quantile: the highest finite edge
                if cumulative == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (cumulative - lower_count)
            lower_bound, lower_count = bound, cumulative
        return self.bounds[-1][0]


@dataclass
class ServiceSample:
    service: str
    requests: float = 0.0
    errors: float = 0.0
    latency: Histogram = field(default_factory=lambda: Histogram(()))
    seconds: float | None = None
    """How long the measured window lasted (for throughput); None when the source cannot tell."""
    notes: list[str] = field(default_factory=list)
    routes: dict[str, ServiceSample] = field(default_factory=dict)
    """The same counts by route (template, or Locust's name for it), for objectives scoped to routes."""

    @property
    def throughput(self) -> float | None:
        return self.requests / self.seconds if self.seconds else None

    @classmethod
    def of_routes(cls, service: str, routes: dict[str, ServiceSample], seconds: float | None = None) -> ServiceSample:
        """A service's sample as the sum of its routes' (which it keeps, for scoped objectives)."""
        parts = list(routes.values())
        return cls(
            service=service,
            requests=sum(p.requests for p in parts),
            errors=sum(p.errors for p in parts),
            latency=Histogram.merged([p.latency for p in parts if p.latency.bounds]),
            seconds=seconds,
            routes=routes,
        )

    def scoped(self, scope: RouteScope | None) -> ServiceSample:
        """The sample of only the routes an objective counts (itself when it counts them all)."""
        if scope is None:
            return self
        if not self.routes:
            counted = ServiceSample(service=self.service, seconds=self.seconds, notes=list(self.notes))
            counted.notes.append("the source gives no per-route counts: a route-scoped objective sees nothing")
            return counted
        kept = {route: sample for route, sample in self.routes.items() if scope.counts(route)}
        counted = ServiceSample.of_routes(self.service, kept, self.seconds)
        counted.notes = list(self.notes)
        return counted
