"""Builds and runs the platform: the embedded all-in-one process, migrations, account set-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console

from cerebrum.demo import DemoAccounts, ensure_demo_accounts, seed_academy, set_account_password
from cerebrum.platform import Platform
from cerebrum.registry import SERVICES, settings_for
from observability.logging import log_format
from services.gateway.app import create_app as create_gateway_app
from services.gateway.settings import GatewaySettings
from services.kit.app import ServiceKit, setup_process_telemetry
from services.kit.errors import Conflict, DomainError
from services.kit.http import AsgiTransport
from services.kit.migrations import upgrade

# Whose X-Forwarded-For to believe is the apps' TRUSTED_PROXIES setting alone (services.kit.proxies),
# not also uvicorn's FORWARDED_ALLOW_IPS, which trusts 127.0.0.1 unless told otherwise.
_UVICORN: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "lifespan": "on",
    "server_header": False,
    "proxy_headers": False,
    # A student reads for 10–30 s between clicks. uvicorn's default 5 s keep-alive closed every
    # connection in between, so each click paid for a new one (`python -m bench.cpu` prices a
    # course read on a new connection beside one on a kept-alive connection). 75 s outlasts any
    # think time and the gateway's pool of upstream connections (aiohttp keeps an idle one 15 s),
    # so a server never closes a connection its client is about to reuse.
    "timeout_keep_alive": int(os.environ.get("KEEP_ALIVE_SECONDS", "75")),
}


def build_platform(
    *, overrides: dict[str, Any] | None = None, on_ready: Any = None, names: list[str] | None = None
) -> Platform:
    """Builds every service's app from the environment (plus overrides) into one Platform."""
    platform: Platform | None = None

    def this_platform() -> Any:
        assert platform is not None
        return platform.in_process

    # Services calling services (the enrolment saga) and the gateway reach them in-process,
    # through the platform's own dispatch, with the same client as over the network.
    in_process = AsgiTransport(this_platform)
    apps: dict[str, Any] = {}
    prefixes: dict[str, str] = {}
    for name in names or list(SERVICES):
        spec = SERVICES[name]
        settings = settings_for(name, **(overrides or {}))
        apps[name] = spec.create_app(settings, in_process) if spec.calls_services else spec.create_app(settings)
        prefixes.update({segment: name for segment in spec.prefixes})
    first = next(iter(apps.values())).state.kit.settings
    gateway_settings = GatewaySettings(**(overrides or {}))
    apps["gateway"] = create_gateway_app(
        gateway_settings, transports={name: in_process for name in gateway_settings.upstreams if name in apps}
    )
    prefixes.update({"api": "gateway", "gateway": "gateway"})
    platform = Platform(
        apps,
        prefixes,
        observability=first.observability,
        on_ready=on_ready,
        trusted_proxies=gateway_settings.trusted_proxies,
    )
    return platform


def _traces_hint() -> str:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint and exporter in ("", "otlp"):
        return f"exported over OTLP to {endpoint}"
    if exporter == "console":
        return "printed on this terminal (OTEL_TRACES_EXPORTER=console)"
    return (
        "recorded, not exported: set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 "
        "(Jaeger or a collector) to see them; trace ids are in every log line"
    )


def banner(console: Console, *, url: str, platform: Platform, data_dir: Path, demo: DemoAccounts | None) -> None:
    kit = platform.kit(next(iter(platform.apps)))
    storage = "SQLite under " + str(data_dir) if kit.settings.embedded else "PostgreSQL"
    cache = "Redis at REDIS_URL" if kit.settings.redis_url else "an in-process Redis stand-in"
    console.print(
        f"\n[bold green]Cerebrum academy is running[/] at [bold]{url}[/] "
        f"({len(platform.apps)} service{'s' if len(platform.apps) > 1 else ''} in one process, {storage}, {cache})"
    )
    console.print(f"  Catalogue  {url}/api/courses   search {url}/api/courses/search?q=genetics")
    console.print(f"  Gateway    {url}/api/...  (merged OpenAPI at {url}/api/openapi.json)")
    console.print(f"  API docs   {url}/docs/users  (Swagger UI, served offline; ReDoc at {url}/docs/users/redoc)")
    console.print(f"  Metrics    {url}/metrics   (Prometheus / OpenMetrics, with trace exemplars)")
    console.print(f"  Traces     {_traces_hint()}")
    console.print(f"  Health     {url}/health   readiness {url}/ready")
    if log_format() == "json":
        console.print("  Logs       JSON lines on standard output, each with trace_id and request_id")
    else:
        console.print("  Logs       one line per request on this terminal; LOG_FORMAT=json for JSON lines")
    if demo is not None:
        console.print(
            f"  Accounts   admin {demo.admin_email}, student {demo.student_email} "
            f"(passwords in {demo.credentials_file}, readable only by you)"
        )
        console.print("\n  First request, logging in as the demo student:")
        console.print(
            f"    curl -s {url}/api/auth/login -H 'content-type: application/json' -d @{demo.student_login_file}",
            soft_wrap=True,
        )
    console.print(f"  The whole journey, step by step: .venv/bin/cerebrum demo journey --url {url}")
    console.print("  Stop with Ctrl-C.\n")


def run_embedded(*, host: str, port: int, data_dir: Path, demo: bool, console: Console) -> None:
    """Runs all services in one uvicorn process until interrupted."""
    url = f"http://{host}:{port}"
    accounts: list[DemoAccounts | None] = [None]

    async def ready(platform: Platform) -> None:
        if demo:
            accounts[0] = await ensure_demo_accounts(platform.apps["users"], data_dir)
            await seed_academy(platform.apps)

    # Telemetry first: the database and Redis instrumentation must see the engines being made.
    setup_process_telemetry(settings_for("users", data_dir=data_dir), process_name="cerebrum")
    platform = build_platform(overrides={"data_dir": data_dir}, on_ready=ready)
    _prepare_the_collector()
    config = uvicorn.Config(platform, host=host, port=port, **_UVICORN)
    _BannerLastServer(
        config, lambda: banner(console, url=url, platform=platform, data_dir=data_dir, demo=accounts[0])
    ).run()


class _BannerLastServer(uvicorn.Server):
    """Prints the banner once uvicorn listens, after its own start-up lines, so it is the last thing shown."""

    def __init__(self, config: uvicorn.Config, show_banner: Any) -> None:
        super().__init__(config)
        self.show_banner = show_banner

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.show_banner()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # Ctrl-C is how `cerebrum up` is meant to stop. Once every service has shut down, exit 0
        # rather than have uvicorn raise the signal again, which make and shells report as an
        # error ("Error 130", "Terminated").
        self._captured_signals.clear()


async def migrate(names: list[str] | None, *, console: Console) -> None:
    """Migrates each named service's schema (every service and the gateway by default)."""
    from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS

    for name in names or [*SERVICES, "gateway"]:
        if name == "gateway":
            settings: Any = GatewaySettings()
            migrations = GATEWAY_MIGRATIONS
        else:
            settings, migrations = settings_for(name), SERVICES[name].migrations
        kit = ServiceKit.build(settings)
        try:
            await upgrade(kit.db, migrations)
            console.print(f"[green]migrated[/] {name} ({kit.db.url.render_as_string(hide_password=True)})")
        finally:
            await kit.close()


async def new_revision(name: str, message: str, *, console: Console) -> None:
    """Autogenerates a migration against a scratch SQLite database brought to the latest revision."""
    import tempfile

    from sqlalchemy.engine import make_url

    from services.kit.db import Database
    from services.kit.migrations import autogenerate

    spec = SERVICES[name]
    with tempfile.TemporaryDirectory() as scratch:
        db = Database(make_url(f"sqlite+aiosqlite:///{scratch}/{name}.db"), schema=None)
        try:
            await upgrade(db, spec.migrations)
            async with db.engine.begin() as conn:
                await conn.run_sync(autogenerate, spec.migrations, message)
        finally:
            await db.dispose()
    console.print(f"[green]new migration[/] for {name} in {spec.migrations / 'versions'}")


async def create_admin(*, email: str, password: str, full_name: str, console: Console) -> int:
    """Creates an admin account, or makes an existing account an admin with this password."""
    from cerebrum.demo import create_account

    spec = SERVICES["users"]
    app = spec.create_app(settings_for("users"))
    kit: ServiceKit = app.state.kit
    try:
        await upgrade(kit.db, spec.migrations)
        try:
            await create_account(app, email=email, password=password, full_name=full_name, role="admin")
            console.print(f"[green]created admin[/] {email}")
        except Conflict:
            await set_account_password(app, email=email, password=password, role="admin")
            console.print(f"[green]{email} is now an admin[/] (password set, sessions revoked)")
        return 0
    except DomainError as exc:
        console.print(f"[red]{exc.title}:[/] {exc.detail}")
        return 2
    finally:
        await kit.close()


async def load_catalogue(*, console: Console) -> int:
    """Migrates the courses service and loads the demo catalogue into it."""
    from services.courses.demo import seed_catalogue

    spec = SERVICES["courses"]
    app = spec.create_app(settings_for("courses"))
    kit: ServiceKit = app.state.kit
    try:
        await upgrade(kit.db, spec.migrations)
        async with kit.db.session_scope() as db:
            added = await seed_catalogue(db=db)
        console.print(f"[green]catalogue:[/] {added} courses added" if added else "catalogue already loaded")
        return added
    finally:
        await kit.close()


async def load_question_bank(*, count: int, seed: int, console: Console) -> int:
    """Migrates the assessments service and generates a question bank of the given size."""
    import time

    from rich.progress import Progress

    from services.assessments.bank import generate_bank

    spec = SERVICES["assessments"]
    app = spec.create_app(settings_for("assessments"))
    kit: ServiceKit = app.state.kit
    started = time.perf_counter()
    try:
        await upgrade(kit.db, spec.migrations)
        chunk, made = 10_000, 0
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("generating questions", total=count)
            while made < count:
                size = min(chunk, count - made)
                async with kit.db.session_scope() as db:
                    made += await generate_bank(db=db, count=size, seed=seed + made)
                progress.update(task, completed=made)
        console.print(f"[green]question bank:[/] {made:,} questions in {time.perf_counter() - started:.1f}s")
        return made
    finally:
        await kit.close()


def _shadow_rules() -> dict[str, Any]:
    """Shadow answers are compared by slo/gates/shadow.yaml, the gate's own file, unless SHADOW_RULES_FILE says.

    Found beside the source tree; an installed image without it compares by the defaults.
    """
    rules = Path(__file__).resolve().parents[1] / "slo" / "gates" / "shadow.yaml"
    return {} if os.environ.get("SHADOW_RULES_FILE") or not rules.exists() else {"shadow_rules_file": rules}


def serve_one(name: str, *, host: str, port: int | None, migrate: bool, console: Console) -> None:
    """Runs one service (or the gateway) under uvicorn, as distributed mode does for each."""
    if name == "gateway":
        settings: Any = GatewaySettings(migrate_on_start=migrate, **_shadow_rules())
        setup_process_telemetry(settings)
        app: Any = create_gateway_app(settings)
        default_port = 8000
    elif name in SERVICES:
        spec = SERVICES[name]
        settings = settings_for(name, migrate_on_start=migrate)
        # Telemetry first: the database and Redis instrumentation must see the engines being made.
        setup_process_telemetry(settings)
        app = spec.create_app(settings)
        default_port = spec.port
    else:
        console.print(f"[red]no service called {name}[/]; known: gateway, {', '.join(SERVICES)}")
        raise SystemExit(2)
    _prepare_the_collector()
    config = uvicorn.Config(app, host=host, port=port or default_port, **_UVICORN)
    uvicorn.Server(config).run()


YOUNG_COLLECTION_THRESHOLD = 50_000
"""Objects allocated (less those freed) between two collections of the youngest generation: Python's
default is 700.

A server keeps each request's objects alive while the request waits on its calls. With the
default, anything alive for more than a few milliseconds was collected twice and moved to the
oldest generation, so the full collections that rescan every long-lived object (the gateway's
copies, verified tokens and rate-limit decisions) came every few seconds. Measured under the
students on both cores (6,250 at 10–30 s think): the gateway spent 18% of its CPU collecting, a
full collection about every 7 s taking some 200 ms, every request in flight waiting on it; the
other services 4–7%. With 50,000: 1.3% and 1–2.5%, and one full collection in the run."""


def _prepare_the_collector() -> None:
    """Moves everything built at start-up out of the garbage collector's sight, and collects the
    youngest generation less often (``YOUNG_COLLECTION_THRESHOLD``).

    The app's long-lived objects (routes, models, metrics) would otherwise be rescanned by every
    full collection while requests allocate; measured on the analytics ingest path, that tripled
    validation cost.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)
