"""One face over the three buses for the contract suite: publish, open consumers (one
consumer group), read the dead letters back."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from adapters.bus.memory import MemoryBus
from adapters.bus.postgres import PostgresBus
from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.ports import EventBus, EventConsumer

RETRY = RetryPolicy(max_attempts=3, backoff=0.05, max_backoff=0.2)


class DeadLetterRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    topic: str
    key: str
    payload: bytes
    attempts: int
    error: str


class Harness:
    name: str
    bus: EventBus
    attempts_survive_crash: bool  # does a redelivery after a crash count the attempt?

    async def start(self) -> None:
        return None

    async def consumer(self, topics: tuple[str, ...] = (events.INBOUND,)) -> EventConsumer:
        raise NotImplementedError

    async def dead_letters(self) -> list[DeadLetterRow]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class MemoryHarness(Harness):
    name = "memory"
    attempts_survive_crash = True

    def __init__(self) -> None:
        self.memory = MemoryBus(RETRY, visibility_timeout=1.0)
        self.bus = self.memory

    async def consumer(self, topics: tuple[str, ...] = (events.INBOUND,)) -> EventConsumer:
        return self.memory.consumer(topics)

    async def dead_letters(self) -> list[DeadLetterRow]:
        return [DeadLetterRow(**msgspec.structs.asdict(d)) for d in self.memory.dead_letters]


class PostgresHarness(Harness):
    name = "postgres"
    attempts_survive_crash = True

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.postgres = PostgresBus(pool)
        self.bus = self.postgres

    async def consumer(self, topics: tuple[str, ...] = (events.INBOUND,)) -> EventConsumer:
        return self.postgres.consumer(topics, retry=RETRY, visibility_timeout=1.0)

    async def dead_letters(self) -> list[DeadLetterRow]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT outbox_id, topic, key, payload, attempts, error FROM dead_letters"
                " ORDER BY id"
            )
            rows = await cursor.fetchall()
        return [
            DeadLetterRow(
                id=str(r[0]), topic=r[1], key=r[2], payload=bytes(r[3]), attempts=r[4], error=r[5]
            )
            for r in rows
        ]


class KafkaHarness(Harness):
    name = "kafka"
    attempts_survive_crash = False

    def __init__(self, bootstrap: str) -> None:
        from adapters.bus.kafka import KafkaBus, KafkaConfig

        run = uuid.uuid4().hex[:8]
        self.config = KafkaConfig(
            bootstrap=bootstrap,
            topic_prefix=f"t{run}.",
            partitions=1,  # every key in one partition: lanes must keep them apart
            group=f"g{run}",
            idempotent=False,  # Tansu's memory storage lacks InitProducerId
            session_timeout_ms=1500,  # Tansu holds a rejoin for ~2.7x the session timeout
        )
        self.kafka = KafkaBus(self.config)
        self.bus = self.kafka
        self._consumers: list[Any] = []

    async def start(self) -> None:
        from adapters.bus.kafka import ensure_topics

        await ensure_topics(self.config)
        await self.kafka.start()

    async def consumer(self, topics: tuple[str, ...] = (events.INBOUND,)) -> EventConsumer:
        from adapters.bus.kafka_consumer import KafkaConsumer

        consumer = KafkaConsumer(self.config, topics, self.kafka, retry=RETRY)
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    async def dead_letters(self) -> list[DeadLetterRow]:
        from aiokafka import AIOKafkaConsumer

        reader = AIOKafkaConsumer(
            self.config.topic(events.DLQ),
            bootstrap_servers=self.config.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            found: list[DeadLetterRow] = []
            batches = await reader.getmany(timeout_ms=3000)
            for messages in batches.values():
                for m in messages:
                    headers = {k: v.decode() for k, v in m.headers}
                    found.append(
                        DeadLetterRow(
                            id=headers["fte-id"],
                            topic=headers["fte-topic"],
                            key=m.key.decode(),
                            payload=m.value,
                            attempts=int(headers["fte-attempts"]),
                            error=headers["fte-error"],
                        )
                    )
            return found
        finally:
            await reader.stop()

    async def aclose(self) -> None:
        for consumer in self._consumers:
            await consumer.close()
        await self.kafka.stop()
