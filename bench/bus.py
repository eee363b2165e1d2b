"""The event bus end to end: outbox → relay → RabbitMQ → idempotent consumer, against bare pika.

Throughput: N events waiting in an outbox, timed until the consumer's inbox holds all N.
Latency: events recorded at a steady pace in small transactions, each timed from its outbox
commit to its inbox commit. Reference: an unconfirmed pika publish loop and a consume loop with
one ack per batch, on the same broker in the same run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pika
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select

from bench.harness import PG_URL, rabbitmqctl
from services.contracts.events import Payload
from services.kit.db import Database, async_url
from services.kit.events import Event, define_inbox, define_outbox, record_event
from services.kit.events.consumer import EventConsumer
from services.kit.events.contracts import Handler, in_batches
from services.kit.events.outbox import OutboxRelay
from services.kit.events.rabbitmq import RabbitBus

EVENTS = 50_000
T = TypeVar("T")


class BenchNoted(Payload):
    """The bench's own event: only its own queue ever sees it."""

    event_type = "bench.noted"
    n: str


metadata = MetaData()
OUTBOX = define_outbox(metadata)
INBOX = define_inbox(metadata)
LEDGER = Table(
    "ledger", metadata, Column("id", Integer, primary_key=True), Column("event_id", Uuid), Column("note", String(40))
)


async def _handle(event: Event, session: Any) -> None:
    """A handler of one event at a time: a row each, one statement each."""
    await session.execute(LEDGER.insert(), {"event_id": event.id, "note": event.data["n"]})


async def _handle_many(events: Sequence[Event], session: Any) -> None:
    """The same rows, written for a run of consecutive events in one statement (``in_batches``)."""
    await session.execute(LEDGER.insert(), [{"event_id": e.id, "note": e.data["n"]} for e in events])


HANDLERS: dict[str, Handler] = {"batched": in_batches(_handle_many), "one at a time": _handle}


def bare_pika(url: str, count: int) -> dict[str, float]:
    """The reference: unconfirmed publishes, then consuming with one ack per 200 messages."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("bare", durable=True)
    body = b'{"id":"x","type":"bench.noted","data":{"n":"1"}}'
    started = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", "bare", body, pika.BasicProperties(delivery_mode=2))
    published = time.perf_counter() - started
    channel.basic_qos(prefetch_count=1000)
    received, started = 0, time.perf_counter()
    for method, _, _ in channel.consume("bare", inactivity_timeout=2):
        if method is None:
            break
        received += 1
        if received % 200 == 0 or received == count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if received == count:
            break
    consumed = time.perf_counter() - started
    connection.close()
    return {"publishes_per_s": round(count / published), "consumes_per_s": round(count / consumed)}


async def _consume(url: str, schema: str, handler: str, ready: Any, stop: Any) -> None:
    db = Database(async_url(PG_URL), schema=schema, pool_size=4)
    bus = RabbitBus(url, consumer_batch=500, prefetch=2000)
    await bus.start_consumer(
        EventConsumer(service="bench", db=db, inbox=INBOX, handlers={"bench.noted": HANDLERS[handler]})
    )
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await bus.close()
    await db.dispose()


def consumer_process(url: str, schema: str, handler: str, ready: Any, stop: Any) -> None:
    """The consuming service: a process of its own, as in distributed mode."""
    asyncio.run(_consume(url, schema, handler, ready, stop))


def _process_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(consumer: int | None) -> dict[str, float]:
    """CPU time so far of the relaying process (this one), the consuming process and the broker."""
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    return {
        "relay_process": time.process_time(),
        "consumer_process": _process_cpu(consumer),
        "rabbitmq": _process_cpu(int(found[0])) if found else 0.0,
    }


async def platform_bus(url: str, schema: str, count: int, handler: str) -> dict[str, Any]:
    db = Database(async_url(PG_URL), schema=schema, pool_size=10)
    await db.ensure_schema()
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    raw = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    now = time.time()
    from datetime import UTC, datetime

    rows = []
    for i in range(count):
        event_id = uuid.uuid4()
        stamp = datetime.fromtimestamp(now, UTC)
        payload = (
            f'{{"id":"{event_id}","type":"bench.noted","source":"bench","occurred_at":"{stamp.isoformat()}",'
            f'"data":{{"n":"{i}"}}}}'
        )
        rows.append((event_id, "bench.noted", payload, "{}", stamp, None))
    await raw.copy_records_to_table(
        "outbox", records=rows, columns=["id", "event_type", "payload", "headers", "created_at", "published_at"]
    )
    await raw.close()

    bus = RabbitBus(url)
    bus.declare("bench", ["bench.noted"])
    spawn = multiprocessing.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    consumer = spawn.Process(target=consumer_process, args=(url, schema, handler, ready, stop), name="bench-consumer")
    consumer.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.wait, 60)
    relay = OutboxRelay(service="bench", db=db, outbox=OUTBOX, bus=bus, batch_size=1000, poll_interval=0.05)
    started, cpu = time.perf_counter(), _cpu_seconds(consumer.pid)
    await relay.start()

    async def handled() -> int:
        async with db.session_scope() as session:
            return int((await session.execute(select(func.count()).select_from(INBOX))).scalar_one())

    while await handled() < count:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    spent = {name: round((after - cpu[name]) / count * 1e6) for name, after in _cpu_seconds(consumer.pid).items()}
    # Latency at a steady pace: 40 transactions of 25 events, 20 ms apart (about 1,250 events/s).
    marks: list[float] = []
    for _ in range(40):
        async with db.session_scope() as session:
            for _ in range(25):
                await record_event(session, OUTBOX, BenchNoted(n="lat"), source="bench")
        await asyncio.sleep(0.02)
    target = count + 1000
    while await handled() < target:
        await asyncio.sleep(0.02)
    async with db.session_scope() as session:
        pairs = (
            await session.execute(
                select(OUTBOX.c.created_at, INBOX.c.handled_at)
                .join(INBOX, INBOX.c.event_id == OUTBOX.c.id)
                .where(OUTBOX.c.payload["data"]["n"].as_string() == "lat")
            )
        ).all()
        ledger = int((await session.execute(select(func.count()).select_from(LEDGER))).scalar_one())
    marks = sorted((handled_at - created_at).total_seconds() * 1000 for created_at, handled_at in pairs)
    await relay.stop()
    stop.set()
    consumer.join(30)
    await bus.close()
    await db.dispose()
    return {
        "events_per_s": round(count / elapsed),
        "latency_p50_ms": round(statistics.median(marks), 1),
        "latency_p99_ms": round(marks[int(len(marks) * 0.99) - 1], 1),
        "events_lost": target - ledger,
        "cpu_us_per_event": spent,
    }


def _isolated(run: Callable[[str, str], T]) -> T:
    """Runs ``run(amqp_url, schema)`` in a vhost and a schema of its own, dropped afterwards."""
    vhost, schema = f"bench-{uuid.uuid4().hex[:8]}", f"bench_bus_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return run(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", schema)
    finally:
        rabbitmqctl("delete_vhost", vhost)

        async def drop() -> None:
            conn = await asyncpg.connect(PG_URL)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()

        asyncio.run(drop())


def run(count: int = EVENTS) -> dict[str, Any]:
    print(f"bench: bare pika, {count:,} messages…", flush=True)
    reference = _isolated(lambda url, _schema: bare_pika(url, count))
    measured = {}
    for name in HANDLERS:
        print(f"bench: outbox → RabbitMQ → consumer, {count:,} events, handler {name}…", flush=True)
        measured[name] = _isolated(lambda url, schema: asyncio.run(platform_bus(url, schema, count, name)))  # noqa: B023
    return {
        "events": count,
        "platform": measured["batched"],
        "platform_handler_one_at_a_time": measured["one at a time"],
        "bare_pika": reference,
        "ratio_to_bare_consume": round(measured["batched"]["events_per_s"] / reference["consumes_per_s"], 3),
        "target_events_per_s": 5000,
        "handlers": {
            "batched": "in_batches: one INSERT of a row per event for each run of consecutive events",
            "one at a time": "one INSERT per event",
        },
    }


if __name__ == "__main__":
    print(run())
