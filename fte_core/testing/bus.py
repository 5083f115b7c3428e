"""In-memory event bus and channel sender: record what the agent published and sent."""

from __future__ import annotations

import itertools

import msgspec

from fte_core.errors import DeliveryError
from fte_core.models import DeliveryStatus, Reply
from fte_core.ports import DeliveryResult, DeliveryTarget


class PublishedEvent(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    key: str
    event: msgspec.Struct


class InMemoryBus:
    def __init__(self) -> None:
        self.published: list[PublishedEvent] = []

    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None:
        self.published.append(PublishedEvent(topic=topic, key=key, event=event))

    def on(self, topic: str) -> list[msgspec.Struct]:
        return [p.event for p in self.published if p.topic == topic]


class SentReply(msgspec.Struct, frozen=True, kw_only=True):
    reply: Reply
    target: DeliveryTarget


class RecordingSender:
    """A ChannelSender that keeps what it was asked to send; `fail_next` simulates outages."""

    def __init__(self) -> None:
        self.sent: list[SentReply] = []
        self.fail_next = 0
        self._ids = itertools.count(1)

    async def send(self, reply: Reply, target: DeliveryTarget) -> DeliveryResult:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DeliveryError(f"simulated delivery failure to {target.channel}")
        self.sent.append(SentReply(reply=reply, target=target))
        ids = tuple(f"fake-{next(self._ids)}" for _ in reply.parts)
        return DeliveryResult(provider_message_ids=ids, status=DeliveryStatus.SENT)
