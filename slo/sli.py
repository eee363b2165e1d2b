"""What a source measured for one service: request and error counts and a latency histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


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

    @property
    def throughput(self) -> float | None:
        return self.requests / self.seconds if self.seconds else None
