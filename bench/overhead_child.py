"""The processes ``bench.overhead_probe`` starts: one (case, variant) measured in-process, and a stand-in upstream.

The child builds one app (an empty route, a courses read, a users write, the gateway), sets up
telemetry from its environment as a service would, replays one prepared request through the
app's ASGI interface, and writes CPU and wall time per request to a pipe its parent reads.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench.harness import PG_URL, REDIS_URL

# --- the minimal ASGI client ------------------------------------------------------------------

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Call:
    """One prepared request, replayed many times through an app's ASGI interface."""

    def __init__(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", keep: bool = False
    ) -> None:
        self.method, self.path, self.body, self.keep = method, path, body, keep
        raw = [(b"host", b"probe"), (b"user-agent", b"overhead-probe/1")]
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if body:
            raw.append((b"content-length", str(len(body)).encode()))
        self.headers = raw
        self.status = 0
        self.reply = b""

    async def __call__(self, app: ASGIApp) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": list(self.headers),
            "client": ("203.0.113.7", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        delivered = False
        body = self.body

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif self.keep and message["type"] == "http.response.body":
                self.reply += message.get("body", b"")

        await app(scope, receive, send)
        return self.status


# --- the child: one case, one variant ----------------------------------------------------------


def _telemetry(settings: Any) -> None:
    from observability import configure_logging, configure_tracing
    from services.kit.app import setup_process_telemetry

    if os.environ.get("PROBE_NO_LIBRARIES"):  # the server span only: no Redis, SQL or aiohttp spans
        import services.kit.app

        def no_libraries(*names: str) -> None:
            return None

        services.kit.app.instrument_libraries = no_libraries
    if os.environ.get("PROBE_NO_SDK"):
        configure_logging(service=settings.service_name, level=settings.log_level)
        return
    setup_process_telemetry(settings)
    if settings.observability and os.environ.get("PROBE_NULL_EXPORTER"):
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class NullExporter(SpanExporter):
            """Takes spans and drops them: the BatchSpanProcessor's cost without encoding or I/O."""

            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        configure_tracing(
            service_name=settings.service_name,
            service_version=settings.service_version,
            environment=settings.environment,
            extra_processors=[BatchSpanProcessor(NullExporter())],
        )


def _flush() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()


def _common_env(case: str) -> dict[str, Any]:
    return {
        "environment": "test",
        "database_url": PG_URL,
        "database_schema": f"{os.environ['PROBE_SCHEMA']}_{case}",  # a schema per service, as deployed
        "redis_url": REDIS_URL,
        "redis_key_prefix": os.environ["PROBE_PREFIX"],
        "data_dir": os.environ["PROBE_DATA"],
        "jwt_private_key": os.environ["PROBE_JWT_KEY"],
        "access_token_ttl_seconds": 3600,
    }


async def _empty_app() -> tuple[ASGIApp, Call, Any]:
    # As bench/apps.py builds it (that module sets telemetry up when imported, so it is not used).
    from observability import ObservabilityMiddleware
    from services.kit.app import new_fastapi
    from services.kit.settings import ServiceSettings

    settings = ServiceSettings(service_name="bench", log_level="INFO")
    _telemetry(settings)
    app = new_fastapi(docs_url=None, openapi_url=None)

    @app.get("/ping/{item_id}")
    async def ping(item_id: int) -> dict[str, Any]:
        return {}

    if settings.observability:
        app.add_middleware(ObservabilityMiddleware, service="bench")
    return app, Call("GET", "/ping/1"), None


async def _courses_app() -> tuple[ASGIApp, Call, Any]:
    from services.courses.app import create_app
    from services.courses.settings import CoursesSettings
    from services.kit.auth import TokenIssuer

    settings = CoursesSettings(**_common_env("courses"))
    _telemetry(settings)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    admin = TokenIssuer(settings).issue(user_id=uuid.uuid4(), role="admin", session_id=None)
    slug = f"probe-{uuid.uuid4().hex[:10]}"
    body = {
        "slug": slug,
        "title": "Genetics for NEET",
        "subject": "biology",
        "grade": "12",
        "price_paise": 49900,
        "capacity": 100,
        "is_published": True,
        "lessons": [{"title": f"Lesson {i}", "duration_minutes": 30} for i in range(5)],
    }
    headers = {"authorization": f"Bearer {admin}", "content-type": "application/json"}
    created = Call("POST", "/courses", headers, json.dumps(body).encode(), keep=True)
    await created(app)
    if created.status != 201:
        raise SystemExit(f"probe: could not create a course: {created.status} {created.reply!r}")
    course_id = json.loads(created.reply)["id"]
    return app, Call("GET", f"/courses/{course_id}"), lifespan


async def _users_app() -> tuple[ASGIApp, Call, Any]:
    from services.users.app import create_app
    from services.users.settings import UsersSettings

    settings = UsersSettings(**_common_env("users"), password_time_cost=1, password_memory_kib=1024)
    _telemetry(settings)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    email, password = f"probe-{uuid.uuid4().hex[:10]}@example.com", "Mendel-Genetics-1"
    json_headers = {"content-type": "application/json"}
    account = {"email": email, "password": password, "full_name": "Probe Student"}
    await Call("POST", "/auth/register", json_headers, json.dumps(account).encode())(app)
    login = Call("POST", "/auth/login", json_headers, json.dumps({"email": email, "password": password}).encode(), True)
    await login(app)
    if login.status != 200:
        raise SystemExit(f"probe: could not log in: {login.status} {login.reply!r}")
    token = json.loads(login.reply)["access_token"]
    update = Call(
        "PUT",
        "/users/profile",
        {"authorization": f"Bearer {token}", "content-type": "application/json"},
        json.dumps({"city": "Pune", "school": "Kendriya Vidyalaya"}).encode(),
    )
    return app, update, lifespan


async def _gateway_app() -> tuple[ASGIApp, Call, Any]:
    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings
    from services.kit.auth import TokenIssuer

    upstream = os.environ["PROBE_UPSTREAM"]
    settings = GatewaySettings(
        **_common_env("gateway"),
        upstreams={"courses": upstream, "users": upstream},
        rate_limits="1000000/minute;10000000/hour",
    )
    _telemetry(settings)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    token = TokenIssuer(settings).issue(user_id=uuid.uuid4(), role="student", session_id=None)
    call = Call("GET", f"/api/courses/{uuid.uuid4()}", {"authorization": f"Bearer {token}", "accept": "*/*"})
    return app, call, lifespan


BUILDERS = {"empty": _empty_app, "courses": _courses_app, "users": _users_app, "gateway": _gateway_app}


def _count_redis_round_trips() -> list[int]:
    """Counts commands (or pipelines) sent to Redis: one packed send is one round trip."""
    from redis.asyncio.connection import AbstractConnection

    counter = [0]
    original = AbstractConnection.send_packed_command

    async def counted(self: Any, command: Any, check_health: bool = True) -> None:
        counter[0] += 1
        await original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    return counter


def _middleware_parent(app: Any) -> Any:
    """The layer of the app's middleware stack that calls ObservabilityMiddleware (None if absent)."""
    from observability import ObservabilityMiddleware

    node = getattr(app, "middleware_stack", None)
    while node is not None:
        inner = getattr(node, "app", None)
        if isinstance(inner, ObservabilityMiddleware):
            return node
        node = inner
    return None


async def _measure(app: ASGIApp, call: Call, requests: int, statuses: dict[int, int]) -> tuple[float, float, float]:
    c0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(requests):
        status = await call(app)
        statuses[status] = statuses.get(status, 0) + 1
    _flush()
    c1, t1, w1 = time.process_time(), time.thread_time(), time.perf_counter()
    return (c1 - c0) / requests * 1e6, (t1 - t0) / requests * 1e6, (w1 - w0) / requests * 1e6


async def _child(case: str, requests: int, rounds: int, warmup: int) -> dict[str, Any]:
    round_trips = _count_redis_round_trips()
    app, call, lifespan = await BUILDERS[case]()
    for _ in range(warmup):
        await call(app)
    if call.status >= 400:
        raise SystemExit(f"probe: {case} answers {call.status}")
    _flush()
    gc.collect()
    gc.freeze()
    cpu, thread, wall, bypassed = [], [], [], []
    trips_before = round_trips[0]
    statuses: dict[int, int] = {}
    # With PROBE_AB, each round is followed by one with ObservabilityMiddleware taken out of the
    # stack and the library instrumentation suppressed (its wrappers still run, and return at
    # once): the instrumentation's cost A/B in one process, as noise-free as it gets here.
    parent = _middleware_parent(app) if os.environ.get("PROBE_AB") else None
    for _ in range(rounds):
        measured = await _measure(app, call, requests, statuses)
        cpu.append(measured[0])
        thread.append(measured[1])
        wall.append(measured[2])
        if parent is not None:
            from opentelemetry import context
            from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

            middleware = parent.app
            parent.app = middleware.app
            token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                bypassed.append((await _measure(app, call, requests, statuses))[0])
            finally:
                context.detach(token)
                parent.app = middleware
    trips = (round_trips[0] - trips_before) / (requests * rounds * (2 if parent is not None else 1))
    if lifespan is not None:
        await lifespan.__aexit__(None, None, None)
    return {
        "cpu_us": cpu,
        "thread_us": thread,
        "wall_us": wall,
        "bypassed_cpu_us": bypassed,
        "redis_round_trips": trips,
        "statuses": statuses,
    }


def child_main(case: str, requests: int, rounds: int, warmup: int, out_fd: int) -> None:
    # The access log goes to /dev/null (a write per line still happens, as in a real process).
    real = os.fdopen(os.dup(out_fd), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_child(case, requests, rounds, warmup))
    real.write(json.dumps(result) + "\n")
    real.flush()


def upstream_main(port: int) -> None:
    """A stand-in upstream for the gateway: answers every path with a small JSON body."""
    from aiohttp import web

    body = json.dumps({"id": "probe", "title": "Genetics for NEET", "lessons": []}).encode()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
