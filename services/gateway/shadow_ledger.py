"""What shadow traffic has shown so far, per route: how much was mirrored, how often it differed, and where."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from observability.metrics import at_zero, counter
from observability.redaction import redact
from services.gateway.shadow_diff import FIELD_CLASSES, Difference, Noise

OUTCOMES = ("compared", "failed", "breaker_open", "dropped")
SHADOW_REQUESTS = counter(
    "cerebrum_shadow_requests_total",
    "Requests mirrored to the side that did not serve them, by gateway route (prefix) and outcome.",
    ("route", "outcome"),
)
SHADOW_DIFFS = counter(
    "cerebrum_shadow_diffs_total",
    "Mirrored requests whose answers differed beyond noise, by route and the class of the first field that did.",
    ("route", "field_class"),
)
MAX_ROUTES_PER_PREFIX = 50
TOP_FIELDS = 5
MAX_DIFF_SETS = 1000


def zero_series(prefixes: list[str]) -> None:
    at_zero(SHADOW_REQUESTS, *((p, o) for p in prefixes for o in OUTCOMES))
    at_zero(SHADOW_DIFFS, *((p, c) for p in prefixes for c in FIELD_CLASSES))


@dataclass
class FieldTally:
    count: int
    example: dict[str, Any]


@dataclass
class RouteLedger:
    prefix: str
    route: str
    compared: int = 0
    failed: int = 0
    noise: Noise = field(default_factory=Noise)
    fields: dict[str, FieldTally] = field(default_factory=dict)
    diff_sets: Counter[frozenset[str]] = field(default_factory=Counter)
    """Each compared answer's differing fields; judged again at report time, against all noise learned by then."""
    pending: list[frozenset[str]] = field(default_factory=list)

    def tally(self, differences: list[Difference], *, served_by: str, other: str, settled: bool = True) -> None:
        """Records one comparison; ``settled``: the route's noise is learned well enough to count it now."""
        self.compared += 1
        SHADOW_REQUESTS.labels(self.prefix, "compared").inc()
        settled = settled or len(self.pending) >= MAX_DIFF_SETS  # never held without bound
        if settled and self.pending:
            # The answers compared while the noise was still being learned, judged again now.
            for names in self.pending:
                mattering = [n for n in names if self.matters(n)]
                if mattering:
                    SHADOW_DIFFS.labels(self.prefix, _first_class(mattering)).inc()
            self.pending.clear()
        if not differences:
            return
        names = frozenset(d.field for d in differences)
        if len(self.diff_sets) >= MAX_DIFF_SETS and names not in self.diff_sets:
            names = frozenset(sorted(names)[:1])
        self.diff_sets[names] += 1
        for difference in differences:
            tally = self.fields.get(difference.field)
            if tally is None:
                # One example pair per field, redacted as a log line is: answers can hold emails.
                leaf = difference.field.rsplit(".", 1)[-1]
                pair = {served_by: difference.primary, other: difference.candidate}
                tally = self.fields[difference.field] = FieldTally(0, {k: redact(v, leaf) for k, v in pair.items()})
            tally.count += 1
        # The report re-judges every comparison with the noise learned by then; the counter cannot
        # take an increment back, so it waits for the route's first lessons before counting.
        if settled:
            SHADOW_DIFFS.labels(self.prefix, _first_class(names)).inc()
        else:
            self.pending.append(names)

    def matters(self, name: str) -> bool:
        return not self.noise.covers(name) and not any(name.startswith(u + "[") for u in self.noise.unordered)

    def summary(self) -> dict[str, Any]:
        classes: Counter[str] = Counter()
        for names, count in self.diff_sets.items():
            mattering = [n for n in names if self.matters(n)]
            if mattering:
                classes[_first_class(mattering)] += count
        differing = sum(classes.values())
        top = sorted(
            ((n, t) for n, t in self.fields.items() if self.matters(n)), key=lambda item: (-item[1].count, item[0])
        )[:TOP_FIELDS]
        return {
            "prefix": self.prefix,
            "route": self.route,
            "mirrored": self.compared + self.failed,
            "compared": self.compared,
            "differing": differing,
            "failed": self.failed,
            "diff_rate": round(differing / self.compared, 4) if self.compared else 0.0,
            "by_class": dict(classes),
            "noise": sorted(self.noise.fields),
            "unordered": sorted(self.noise.unordered),
            "learned_from": self.noise.pairs,
            "top_fields": [
                {"field": name, "class": _class(name), "count": tally.count, "example": tally.example}
                for name, tally in top
            ],
        }


def _class(name: str) -> str:
    return Difference(name, None, None).field_class


def _first_class(names: Iterable[str]) -> str:
    return min((_class(n) for n in names), key=FIELD_CLASSES.index)


class ShadowLedger:
    """Per route, in this gateway process (each replica reports its own share of the mirrored traffic)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], RouteLedger] = {}
        self.dropped: Counter[str] = Counter()

    def route(self, prefix: str, route: str) -> RouteLedger:
        ledger = self.routes.get((prefix, route))
        if ledger is None:
            if sum(1 for p, _ in self.routes if p == prefix) >= MAX_ROUTES_PER_PREFIX:
                route = f"* /{prefix}/*"  # bounded: paths are the caller's words
                ledger = self.routes.get((prefix, route))
            if ledger is None:
                ledger = self.routes[(prefix, route)] = RouteLedger(prefix, route)
        return ledger

    def drop(self, prefix: str) -> None:
        self.dropped[prefix] += 1
        SHADOW_REQUESTS.labels(prefix, "dropped").inc()

    def report(self) -> dict[str, Any]:
        routes = sorted(self.routes.values(), key=lambda r: (r.prefix, r.route))
        return {"routes": [r.summary() for r in routes], "dropped": dict(self.dropped)}
