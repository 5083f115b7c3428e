"""`make_bus` wires what FTE_BUS names: the PostgreSQL queue, or the outbox + relay + Kafka."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.bus.postgres import PostgresBus
from fte_core import events
from fte_core.models import Channel
from fte_core.ports import Delivery
from service.bootstrap import make_bus
from service.settings import load_settings

EVENT = events.InboundEvent(message_id="m1", channel=Channel.EMAIL, provider_message_id="p1")


async def receive_one(buses: Any) -> Delivery:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        got = await buses.consumer.receive(10, 0.5)
        if got:
            (delivery,) = got
            await buses.consumer.ack(delivery)
            return delivery
    raise AssertionError("nothing received")


@pytest.mark.postgres
async def test_the_default_bus_is_the_postgresql_queue(pg_pool: AsyncConnectionPool[Any]) -> None:
    async with AsyncExitStack() as stack:
        buses = await make_bus(load_settings({}), pg_pool, stack)
        assert buses.kind == "postgres"
        assert buses.relay is None
        await buses.bus.publish(events.INBOUND, "cust-1", EVENT)
        delivery = await receive_one(buses)
        assert events.decode(delivery.payload) == EVENT
        assert delivery.key == "cust-1"


@pytest.mark.postgres
@pytest.mark.kafka
async def test_kafka_publishes_through_the_outbox_and_its_relay(
    pg_pool: AsyncConnectionPool[Any], kafka_bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:8]
    settings = load_settings(
        {
            "FTE_BUS": "kafka",
            "FTE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "FTE_KAFKA_TOPIC_PREFIX": f"f{run}.",
            "FTE_KAFKA_PARTITIONS": "2",
            "FTE_KAFKA_GROUP": f"g{run}",
            "FTE_KAFKA_IDEMPOTENT": "false",  # Tansu's memory storage lacks InitProducerId
        }
    )
    async with AsyncExitStack() as stack:
        buses = await make_bus(settings, pg_pool, stack)
        assert buses.kind == "kafka"
        assert isinstance(buses.bus, PostgresBus)  # publishers write the outbox
        assert buses.relay is not None
        await buses.bus.publish(events.INBOUND, "cust-1", EVENT)
        assert await buses.relay.relay_once() == 1
        delivery = await receive_one(buses)
        assert events.decode(delivery.payload) == EVENT
        async with pg_pool.connection() as conn:
            cursor = await conn.execute("SELECT id::text FROM outbox WHERE sent_at IS NOT NULL")
            assert await cursor.fetchall() == [(delivery.id,)]  # the record id is the row id


@pytest.mark.postgres
async def test_a_live_consumer_keeps_its_claims_past_the_visibility_timeout(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    queue = PostgresBus(pg_pool)
    await queue.publish(events.INBOUND, "cust-1", EVENT)
    slow = queue.consumer([events.INBOUND], visibility_timeout=0.6)
    other = queue.consumer([events.INBOUND], visibility_timeout=0.6)
    (held,) = await slow.receive(1, 5.0)
    # A handler three visibility timeouts long: the lease is renewed, nobody else gets it.
    assert await other.receive(1, 1.8) == []
    await slow.ack(held)
    await slow.close()
    assert await other.receive(1, 1.0) == []
    await other.close()


@pytest.mark.postgres
async def test_a_consumer_crash_looping_on_an_event_dead_letters_it(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    from adapters.bus.retry import RetryPolicy

    queue = PostgresBus(pg_pool)
    await queue.publish(events.INBOUND, "cust-1", EVENT)
    policy = RetryPolicy(max_attempts=2, backoff=0.01)
    for _ in range(2):  # each consumer "dies" holding it: no ack, no retry, no renewal
        dying = queue.consumer([events.INBOUND], retry=policy, visibility_timeout=0.2)
        assert len(await dying.receive(1, 5.0)) == 1
        dying._closed = True  # as if SIGKILLed: it never closes, never renews
        if dying._renewer is not None:
            dying._renewer.cancel()
    survivor = queue.consumer([events.INBOUND], retry=policy, visibility_timeout=0.2)
    assert await survivor.receive(1, 1.0) == []  # the third claim dead-letters it instead
    await survivor.close()
    async with pg_pool.connection() as conn:
        cursor = await conn.execute("SELECT attempts, error FROM dead_letters")
        assert await cursor.fetchall() == [(3, "no outcome after 2 deliveries")]
