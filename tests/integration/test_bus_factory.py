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
