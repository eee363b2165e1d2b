"""Events between services: a transactional outbox, a relay, idempotent consumers, two transports.

A service records an event in its own outbox table in the same transaction as the change it
describes; the relay publishes outbox rows in batches and marks them sent; a consumer records
the ids it has handled (its inbox) in the same transaction as its effect. Delivery is at least
once, the effect exactly once.
"""

from services.kit.events.contracts import Event, OutgoingMessage
from services.kit.events.outbox import define_inbox, define_outbox, record_event

__all__ = ["Event", "OutgoingMessage", "define_inbox", "define_outbox", "record_event"]
