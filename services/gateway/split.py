"""The strangler-fig split: per prefix, a weight of traffic to the service, the rest to the monolith.

A student is assigned by a hash of their id (or address) and the prefix, so the same student
stays on one side while the weight holds, and moving the weight from 25 to 50 only moves students
whose bucket lies between the two: nobody bounces back and forth.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Collection
from typing import Literal

import structlog
from sqlalchemy import select

from observability.metrics import gauge
from services.gateway.models import TrafficWeight
from services.kit.db import Database
from services.kit.errors import InvalidInput
from services.kit.time import utcnow

Side = Literal["service", "monolith"]
WEIGHT = gauge(
    "cerebrum_gateway_traffic_weight", "Percent of a prefix's traffic sent to the extracted service.", ("prefix",)
)
log = structlog.get_logger("cerebrum.gateway")


def bucket(prefix: str, client_key: str) -> int:
    """A stable number in 0..9999 for this client and prefix."""
    digest = hashlib.blake2b(f"{prefix}:{client_key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 10_000


class TrafficSplit:
    def __init__(
        self, *, db: Database, has_monolith: bool, refresh_seconds: float, prefixes: Collection[str] = ()
    ) -> None:
        self.db = db
        self.has_monolith = has_monolith
        self.refresh_seconds = refresh_seconds
        self.prefixes = tuple(prefixes)
        self.weights: dict[str, int] = {}
        self._loaded = 0.0
        self._report()

    def default_weight(self) -> int:
        # With a monolith beside it, nothing is cut over until someone says so.
        return 0 if self.has_monolith else 100

    def side(self, prefix: str, client_key: str) -> Side:
        if not self.has_monolith:
            return "service"
        weight = self.weights.get(prefix, self.default_weight())
        return "service" if bucket(prefix, client_key) < weight * 100 else "monolith"

    async def refresh(self, *, force: bool = False) -> None:
        """Reloads the weights when they are older than the refresh interval (replicas converge)."""
        if not force and time.monotonic() - self._loaded < self.refresh_seconds:
            return
        self._loaded = time.monotonic()
        try:
            async with self.db.session_scope() as session:
                rows = (await session.execute(select(TrafficWeight))).scalars().all()
        except Exception as exc:  # keep routing with the last weights known while the database is away
            log.warning("weights_not_refreshed", error=type(exc).__name__)
            return
        self.weights = {row.prefix: row.weight for row in rows}
        self._report()

    def _report(self) -> None:
        # Every prefix the gateway routes, with the weight it routes by: a panel of the split shows
        # the default from start-up, not nothing until someone sets a weight.
        for prefix, weight in self.current([*self.prefixes, *self.weights]).items():
            WEIGHT.labels(prefix).set(weight)

    async def set_weight(self, *, prefix: str, weight: int, admin: uuid.UUID | None) -> int:
        """Sets a prefix's weight (0..100), persisted for every replica."""
        if not 0 <= weight <= 100:
            raise InvalidInput("weight is a percentage from 0 to 100", field="weight")
        async with self.db.session_scope() as session:
            row = await session.get(TrafficWeight, prefix)
            if row is None:
                row = TrafficWeight(prefix=prefix, weight=weight, updated_by=admin, updated_at=utcnow())
                session.add(row)
            else:
                row.weight, row.updated_by, row.updated_at = weight, admin, utcnow()
        await self.refresh(force=True)
        log.info("traffic_weight_set", prefix=prefix, weight=weight)
        return weight

    def current(self, prefixes: list[str]) -> dict[str, int]:
        return {prefix: self.weights.get(prefix, self.default_weight()) for prefix in prefixes}
