"""Events: every fact as a CloudEvent in the transactional outbox, and the relay that hands
them on. Owns the ``events`` table. Imports only the store (and the queue's wake-ups)."""

from interlink.events.outbox import EVENT_TYPE_PREFIX, Outbox, OutboxEvent, to_cloudevent
from interlink.events.relay import (
    DirectChooser,
    EventHead,
    EventRelay,
    EventSubscriber,
    InMemorySubscriber,
)

__all__ = [
    "EVENT_TYPE_PREFIX",
    "DirectChooser",
    "EventHead",
    "EventRelay",
    "EventSubscriber",
    "InMemorySubscriber",
    "Outbox",
    "OutboxEvent",
    "to_cloudevent",
]
