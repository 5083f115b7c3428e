"""Kafka (aiokafka): topics, the producer side of the bus, and the dead-letter topic.

Topics are SPEC 7's names behind a configurable prefix, created at start when missing with
the configured partitions and replication. Records are keyed by customer identity (the
bus key), so one customer's events share a partition and stay ordered. The producer waits
for all in-sync replicas (`acks=all`) and is idempotent, so its own retries never
duplicate a record. Every record carries an `fte-id` header: the outbox row id when the
relay published it, else a fresh uuid; consumers hand it out as `Delivery.id`, so a record
the relay published twice is still recognised as one event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.errors import BusError, ConfigError

log = logging.getLogger(__name__)

ID_HEADER = "fte-id"
_PUBLISH_BACKOFF = RetryPolicy(max_attempts=1, backoff=0.2, max_backoff=5.0)
_TOPIC_EXISTS = 36


class KafkaConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bootstrap: str  # host:port[,host:port...]
    topic_prefix: str = ""
    partitions: int = 6
    replication: int = 1
    group: str = "fte-worker"
    # Idempotent producer (needs InitProducerId; Tansu's memory storage lacks it).
    idempotent: bool = True
    client_id: str = "fte"
    request_timeout_ms: int = 30_000
    publish_attempts: int = 5  # KafkaBus.publish tries before raising BusError
    fetch_max_wait_ms: int = 100  # how long the broker may hold a fetch for more data
    session_timeout_ms: int = 10_000

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ConfigError("FTE_KAFKA_BOOTSTRAP: empty")
        if self.partitions < 1 or self.replication < 1 or self.publish_attempts < 1:
            raise ConfigError("Kafka partitions, replication and publish attempts must be >= 1")

    def topic(self, name: str) -> str:
        """The Kafka topic for a bus topic (fte.inbound -> PREFIX + fte.inbound)."""
        return self.topic_prefix + name

    def bus_topic(self, kafka_topic: str) -> str:
        return kafka_topic.removeprefix(self.topic_prefix)


async def ensure_topics(config: KafkaConfig, names: Sequence[str] = events.TOPICS) -> list[str]:
    """Create the missing topics; returns the ones created now."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=config.bootstrap,
        client_id=config.client_id,
        request_timeout_ms=config.request_timeout_ms,
    )
    try:
        await admin.start()
        wanted = [NewTopic(config.topic(n), config.partitions, config.replication) for n in names]
        response = await admin.create_topics(wanted)
    except KafkaError as exc:
        raise BusError(f"cannot create topics at {config.bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
    created = []
    for topic, code, message in response.topic_errors:
        if code == 0:
            created.append(topic)
        elif code != _TOPIC_EXISTS:
            raise BusError(f"cannot create topic {topic}: error {code} {message}")
    if created:
        log.info("created Kafka topics %s", created)
    return created


class KafkaBus:
    """The producer: `publish` for events, `send` for raw payloads (relay, dead letters)."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._producer: Any = None  # aiokafka wants a running loop: made in start()

    async def start(self) -> None:
        config = self.config
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap,
            client_id=config.client_id,
            acks="all",
            enable_idempotence=config.idempotent,
            linger_ms=5,
            request_timeout_ms=config.request_timeout_ms,
            retry_backoff_ms=200,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BusError(f"cannot start the Kafka producer at {config.bootstrap}") from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flushes what is buffered, then closes."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None:
        """Send and wait for the broker's ack; a broker that does not answer within the
        request timeout is tried again with backoff, `publish_attempts` times in all, under
        the same record id. (Events that must survive a longer outage go through the
        outbox and its relay.)"""
        payload, event_id = events.encode(event), uuid.uuid4().hex
        for attempt in range(1, self.config.publish_attempts + 1):
            try:
                await (await self.send(topic, key, payload, event_id))
                return
            except BusError as exc:
                if attempt == self.config.publish_attempts:
                    raise
                delay = _PUBLISH_BACKOFF.delay(attempt)
                log.warning("publish to %s failed (%s); retrying in %.1f s", topic, exc, delay)
                await asyncio.sleep(delay)

    async def send(
        self,
        topic: str,
        key: str,
        payload: bytes,
        event_id: str | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[None]:
        """Queue one record; the returned awaitable completes when the broker acked it (and
        raises BusError if it never does). Queue many, then await them all: one batch."""
        if self._producer is None:
            raise BusError(f"send to {topic}: the Kafka producer is not started")
        record_headers = [(ID_HEADER, (event_id or uuid.uuid4().hex).encode()), *headers]
        try:
            future = await self._producer.send(
                self.config.topic(topic),
                value=payload,
                key=key.encode(),
                headers=record_headers,
            )
        except KafkaError as exc:
            raise BusError(f"send to {topic}: {exc!r}") from exc
        return _acked(future, topic)


async def _acked(future: Awaitable[object], topic: str) -> None:
    try:
        await future
    except KafkaError as exc:
        raise BusError(f"send to {topic}: {exc!r}") from exc
