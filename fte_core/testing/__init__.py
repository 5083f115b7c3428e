"""In-memory fakes of every port, for tests and for trying the library without services."""

from fte_core.testing.bus import InMemoryBus, PublishedEvent, RecordingSender, SentReply
from fte_core.testing.deliveries import InMemoryDeliveries
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.mailboxes import InMemoryMailboxes
from fte_core.testing.policy import SkewedReference
from fte_core.testing.responder import FunctionResponder, ScriptedResponder
from fte_core.testing.store import InMemoryStore

__all__ = [
    "FunctionResponder",
    "InMemoryBus",
    "InMemoryDeliveries",
    "InMemoryKnowledgeBase",
    "InMemoryMailboxes",
    "InMemoryStore",
    "PublishedEvent",
    "RecordingSender",
    "ScriptedResponder",
    "SentReply",
    "SkewedReference",
]
