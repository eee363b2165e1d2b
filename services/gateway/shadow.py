"""Shadow traffic: a share of a prefix's safe requests also goes to the side that did not serve them.

The user's answer never waits for the mirror. A mirrored request is queued (bounded; when full it
is dropped and counted) and sent by a few workers, with its own short timeout, no retries and its
own breaker per side, so a hanging or failing candidate costs the gateway a queue slot at most.
The mirror carries the caller's identity and ``X-Cerebrum-Shadow: 1``, so the side records it as
shadow traffic. Both answers are compared (shadow_diff) and the result kept per route (shadow_ledger).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import structlog
from opentelemetry import propagate
from purgatory.domain.model import OpenedState
from sqlalchemy import select

from services.gateway.models import ShadowShare
from services.gateway.routing import Route
from services.gateway.shadow_diff import Answer, ShadowRules, compare, route_of
from services.gateway.shadow_ledger import SHADOW_REQUESTS, ShadowLedger, zero_series
from services.gateway.split import Side
from services.kit.auth import Identity
from services.kit.db import Database
from services.kit.errors import DependencyUnavailable, InvalidInput
from services.kit.http import Reply, ServiceClient, breaker_factory
from services.kit.time import utcnow

SHADOW_HEADER = "x-cerebrum-shadow"
SAFE_METHODS = frozenset({"GET", "HEAD"})
log = structlog.get_logger("cerebrum.gateway.shadow")


class ShadowShares:
    """Per prefix, the percent of safe requests mirrored; persisted, and reloaded by every replica."""

    def __init__(self, *, db: Database, refresh_seconds: float) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.percents: dict[str, int] = {}
        self._loaded = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    def percent(self, prefix: str) -> int:
        return self.percents.get(prefix, 0)

    def refresh_soon(self) -> None:
        """Reloads in the background when stale: a request never waits on the database for this."""
        if time.monotonic() - self._loaded < self.refresh_seconds or self._refreshing is not None:
            return
        self._refreshing = asyncio.create_task(self.refresh(force=True), context=contextvars.Context())
        self._refreshing.add_done_callback(lambda _: setattr(self, "_refreshing", None))

    async def refresh(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded < self.refresh_seconds:
            return
        self._loaded = time.monotonic()
        try:
            async with self.db.session_scope() as session:
                rows = (await session.execute(select(ShadowShare))).scalars().all()
        except Exception as exc:  # keep mirroring by the last shares known while the database is away
            log.warning("shadow_shares_not_refreshed", error=type(exc).__name__)
            return
        self.percents = {row.prefix: row.percent for row in rows}

    async def set_percent(self, *, prefix: str, percent: int, admin: uuid.UUID | None) -> int:
        """Sets a prefix's mirrored share (0..100), persisted for every replica."""
        if not 0 <= percent <= 100:
            raise InvalidInput("percent is a percentage from 0 to 100", field="percent")
        async with self.db.session_scope() as session:
            row = await session.get(ShadowShare, prefix)
            if row is None:
                session.add(ShadowShare(prefix=prefix, percent=percent, updated_by=admin, updated_at=utcnow()))
            else:
                row.percent, row.updated_by, row.updated_at = percent, admin, utcnow()
        await self.refresh(force=True)
        log.info("shadow_share_set", prefix=prefix, percent=percent)
        return percent

    def current(self, prefixes: Collection[str]) -> dict[str, int]:
        return {prefix: self.percent(prefix) for prefix in prefixes}


@dataclass(frozen=True)
class MirrorJob:
    prefix: str
    route: str
    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    served_by: Side
    primary: Answer


def _other(side: Side) -> Side:
    return "monolith" if side == "service" else "service"


def _answer(reply: Reply) -> Answer:
    return Answer(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.body)


class ShadowMirror:
    def __init__(
        self,
        *,
        shares: ShadowShares,
        clients: Mapping[tuple[str, Side], ServiceClient],
        rules: ShadowRules,
        prefixes: Collection[str],
        queue_size: int = 1000,
        workers: int = 4,
        learn_first: int = 10,
        learn_share: float = 0.1,
    ) -> None:
        self.shares, self.clients, self.rules = shares, clients, rules
        self.ledger = ShadowLedger()
        self.queue: asyncio.Queue[MirrorJob] = asyncio.Queue(maxsize=queue_size)
        self.worker_count = workers
        self.learn_first, self.learn_share = learn_first, learn_share
        self._workers: list[asyncio.Task[None]] = []
        zero_series(sorted(prefixes))

    def offer(
        self,
        *,
        method: str,
        route: Route,
        query: str,
        served_by: Side,
        identity: Identity | None,
        headers: Mapping[str, str],
        body: bytes,
        reply: Reply,
    ) -> bool:
        """Queues a copy of a served request for the other side, when its prefix's share says so."""
        self.shares.refresh_soon()
        percent = self.shares.percent(route.prefix)
        if percent <= 0 or (route.service, _other(served_by)) not in self.clients:
            return False
        name = route_of(method, route.path)
        rules = self.rules.for_route(route.prefix, name)
        if method not in SAFE_METHODS and not rules.read_only:
            return False  # only what cannot change anything is sent twice
        if percent < 100 and random.random() * 100 >= percent:
            return False
        out = {k: v for k, v in headers.items() if k.lower() not in ("x-user-id", "x-user-role")}
        if identity is not None:
            out["x-user-id"], out["x-user-role"] = str(identity.user_id), identity.role
        out[SHADOW_HEADER] = "1"
        propagate.inject(out)  # the mirror shows in the user's trace, under the gateway's span
        job = MirrorJob(
            prefix=route.prefix,
            route=name,
            service=route.service,
            method=method,
            path=route.path + (f"?{query}" if query else ""),
            headers=out,
            body=body or None,
            served_by=served_by,
            primary=_answer(reply),
        )
        self._start()
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.ledger.drop(route.prefix)
            return False
        return True

    def _start(self) -> None:
        if self._workers:
            return
        # An empty context: a worker outlives the request that started it and must not carry its ids.
        self._workers = [
            asyncio.create_task(self._work(), context=contextvars.Context()) for _ in range(self.worker_count)
        ]

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self.mirror(job)
            except Exception:  # a mirror must never stop the workers
                log.exception("shadow_mirror_failed", route=job.route)
            finally:
                self.queue.task_done()

    async def mirror(self, job: MirrorJob) -> None:
        """Sends one job to the other side (and, while learning, to the primary again) and compares."""
        ledger = self.ledger.route(job.prefix, job.route)
        rules = self.rules.for_route(job.prefix, job.route)
        other = _other(job.served_by)
        try:
            candidate = await self._send(job, other)
        except DependencyUnavailable as exc:
            outcome = "breaker_open" if isinstance(exc.__cause__, OpenedState) else "failed"
            ledger.failed += 1
            SHADOW_REQUESTS.labels(job.prefix, outcome).inc()
            return
        # Only with the candidate's answer in hand is the primary asked again: a candidate that
        # is down costs the primary nothing either.
        if ledger.noise.pairs < self.learn_first or random.random() < self.learn_share:
            try:
                again = await self._send(job, job.served_by)
            except DependencyUnavailable:
                pass
            else:
                found = ledger.noise.learn(job.primary, again, rules)
                if found:
                    log.info("shadow_noise_learned", route=job.route, fields=sorted(found))
        ledger.tally(
            compare(job.primary, candidate, rules, ledger.noise),
            served_by=job.served_by,
            other=other,
            settled=ledger.noise.pairs >= self.learn_first,
        )

    async def _send(self, job: MirrorJob, side: Side) -> Answer:
        client = self.clients[(job.service, side)]
        reply = await client.request(job.method, job.path, content=job.body, headers=dict(job.headers))
        return _answer(reply)

    async def drain(self) -> None:
        """Waits until every queued mirror is compared (tests and benchmarks read the ledger after it)."""
        await self.queue.join()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []


def shadow_clients(
    clients: Mapping[tuple[str, Side], ServiceClient], *, timeout: float, threshold: int, ttl: float
) -> dict[tuple[str, Side], ServiceClient]:
    """The gateway's upstreams again, for mirrors: a short timeout, no retries, breakers of their own."""
    breakers = breaker_factory("gateway-shadow", threshold=threshold, ttl=ttl)
    return {
        key: ServiceClient(
            service="gateway-shadow",
            upstream=client.upstream,
            base_url=client.base_url,
            transport=client.transport,
            breakers=breakers,
            timeout=timeout,
            retries=0,
            pass_server_errors=True,
        )
        for key, client in clients.items()
    }
