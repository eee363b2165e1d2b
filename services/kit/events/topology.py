"""The broker's shape: the events exchange, and each consuming service's queue, retry queue and dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from pika.adapters.blocking_connection import BlockingChannel

from services.kit.events.contracts import EXCHANGE

DEAD_LETTER_EXCHANGE = f"{EXCHANGE}.dlx"


def queue_name(service: str) -> str:
    return f"{service}.events"


def declare_consumer_topology(channel: BlockingChannel, service: str, routing_keys: Sequence[str]) -> None:
    """Declares the exchange, the service's durable queue, its retry queue and its dead-letter queue."""
    queue = queue_name(service)
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, "direct", durable=True)
    channel.queue_declare(f"{queue}.dead", durable=True)
    channel.queue_bind(f"{queue}.dead", DEAD_LETTER_EXCHANGE, routing_key=queue)
    channel.queue_declare(
        queue,
        durable=True,
        arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": queue},
    )
    # A failed delivery waits here for its back-off, then goes back to the service's own queue
    # only (through the default exchange), not to every queue bound to its routing key.
    channel.queue_declare(
        f"{queue}.retry", durable=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
    )
    for key in routing_keys:
        channel.queue_bind(queue, EXCHANGE, routing_key=key)
