"""The PostgreSQL queue's wake-ups, sent after the commit (adapters/bus/wake.py): a waiting
consumer wakes long before its poll when another process or its own publishes, and a
burst of commits sends one NOTIFY per window, not one per commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.bus.postgres import PostgresBus, PostgresConsumer
from adapters.bus.wake import CHANNEL, hint
from adapters.storage.postgres.pool import open_pool
from adapters.storage.postgres.store import PostgresStore
from fte_core import events
from fte_core.models import Channel
from tests.integration.test_receipt_contract import digest, form

pytestmark = pytest.mark.postgres

SLOW_POLL = 30.0  # seconds: a consumer that wakes sooner was woken by a hint


@pytest.fixture
async def other_process(pg_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """A second pool stands for another process: it has a Hint of its own."""
    pool = await open_pool(pg_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await hint(pool).close()
        await pool.close()


def event(n: int) -> events.InboundEvent:
    return events.InboundEvent(
        message_id=f"m{n}", channel=Channel.EMAIL, provider_message_id=f"p{n}"
    )


async def woken_after(consumer: PostgresConsumer, commit: Callable[[], Awaitable[object]]) -> float:
    """Seconds from a commit that queues one event to the waiting consumer's delivery."""
    assert await consumer.receive(10, 0.05) == []  # listening, queue empty

    async def later() -> float:
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await commit()
        return started

    task = asyncio.create_task(later())
    got = await consumer.receive(10, 10.0)
    elapsed = time.monotonic() - await task
    assert [d.topic for d in got] == [events.INBOUND]
    return elapsed


async def test_the_outbox_insert_sends_no_notify_inside_its_transaction(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    async with pg_pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal"
        )
        assert await cursor.fetchall() == []


async def test_a_publish_from_another_process_wakes_a_waiting_consumer(
    pg_pool: AsyncConnectionPool[Any], other_process: AsyncConnectionPool[Any]
) -> None:
    assert await publish_wakes(pg_pool, PostgresBus(other_process)) < 2


async def test_a_publish_in_the_same_process_wakes_a_waiting_consumer(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    assert await publish_wakes(pg_pool, PostgresBus(pg_pool)) < 2


async def publish_wakes(pool: AsyncConnectionPool[Any], bus: PostgresBus) -> float:
    consumer = PostgresConsumer(pool, [events.INBOUND], idle_poll=SLOW_POLL)
    try:
        return await woken_after(consumer, lambda: bus.publish(events.INBOUND, "c", event(1)))
    finally:
        await consumer.close()


async def test_a_form_post_in_another_process_wakes_the_worker(
    pg_pool: AsyncConnectionPool[Any], other_process: AsyncConnectionPool[Any]
) -> None:
    consumer = PostgresConsumer(pg_pool, [events.INBOUND], idle_poll=SLOW_POLL)
    api = PostgresStore(other_process)
    try:
        assert await woken_after(consumer, lambda: api.receive(form("f-1"), digest)) < 2
    finally:
        await consumer.close()


async def test_a_burst_of_commits_sends_few_notifies(
    pg_url: str, other_process: AsyncConnectionPool[Any]
) -> None:
    listener = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    async with listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        for _ in range(100):
            hint(other_process).poke()
        await hint(other_process).close()
        heard = [n async for n in listener.notifies(timeout=0.5)]
    assert 1 <= len(heard) <= 2, heard
    assert {n.payload for n in heard} == {hint(other_process).token}
