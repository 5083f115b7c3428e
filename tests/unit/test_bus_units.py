"""The bus's small parts: event encoding, retry policy, settings, the factory, readiness,
and the in-memory bus's visibility timeout (the contract suite covers the rest)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from adapters.bus.memory import MemoryBus
from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.errors import BusError, ConfigError, ValidationError
from fte_core.models import Channel
from fte_core.ports import Delivery
from service.bootstrap import make_bus
from service.settings import load_settings
from service.worker import WorkerHealth, run_worker


def test_events_round_trip_through_their_wire_form() -> None:
    inbound = events.InboundEvent(
        message_id="m1", channel=Channel.WHATSAPP, provider_message_id="SM1"
    )
    outbound = events.OutboundEvent(message_id="m2", channel=Channel.EMAIL)
    assert events.decode(events.encode(inbound)) == inbound
    assert events.decode(events.encode(outbound)) == outbound
    assert b'"type":"inbound"' in events.encode(inbound)


@pytest.mark.parametrize("payload", [b"", b"{}", b'{"type":"nope"}', b"\xff"])
def test_a_payload_that_is_no_event_is_rejected_naming_the_field(payload: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        events.decode(payload)
    assert caught.value.field == "payload"


def test_the_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=4, backoff=0.5, max_backoff=3.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not policy.exhausted(3)
    assert policy.exhausted(4)
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(backoff=5.0, max_backoff=1.0)


def test_bus_settings_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "FTE_BUS": "kafka",
            "FTE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "FTE_KAFKA_TOPIC_PREFIX": "prod.",
            "FTE_KAFKA_PARTITIONS": "12",
            "FTE_KAFKA_REPLICATION": "3",
            "FTE_KAFKA_GROUP": "workers",
            "FTE_BUS_MAX_ATTEMPTS": "7",
            "FTE_BUS_VISIBILITY_TIMEOUT": "90",
            "FTE_WORKER_CONCURRENCY": "64",
        }
    )
    assert (settings.bus, settings.kafka_bootstrap, settings.kafka_topic_prefix) == (
        "kafka",
        "k1:9092,k2:9092",
        "prod.",
    )
    assert (settings.kafka_partitions, settings.kafka_replication, settings.kafka_group) == (
        12,
        3,
        "workers",
    )
    assert (settings.bus_max_attempts, settings.bus_visibility_timeout) == (7, 90.0)
    assert settings.worker_concurrency == 64
    assert load_settings({}).bus == "postgres"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FTE_BUS", "rabbitmq"),
        ("FTE_KAFKA_PARTITIONS", "0"),
        ("FTE_WORKER_CONCURRENCY", "many"),
        ("FTE_BUS_VISIBILITY_TIMEOUT", "-1"),
    ],
)
def test_bad_bus_settings_name_their_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings({var: value})


async def test_make_bus_refuses_what_cannot_work() -> None:
    async with AsyncExitStack() as stack:
        with pytest.raises(ConfigError, match="FTE_KAFKA_BOOTSTRAP"):
            await make_bus(load_settings({"FTE_BUS": "kafka"}), None, stack)
        with pytest.raises(ConfigError, match="FTE_BUS"):
            await make_bus(load_settings({"FTE_BUS": "postgres"}), None, stack)


async def test_make_bus_memory_publishes_to_its_own_consumer() -> None:
    async with AsyncExitStack() as stack:
        buses = await make_bus(load_settings({"FTE_BUS": "memory"}), None, stack)
        event = events.InboundEvent(message_id="m", channel=Channel.EMAIL, provider_message_id="p")
        await buses.bus.publish(events.INBOUND, "c", event)
        (delivery,) = await buses.consumer.receive(10, 1.0)
        assert events.decode(delivery.payload) == event
        assert buses.relay is None


async def test_an_unacked_delivery_comes_back_after_the_visibility_timeout() -> None:
    bus = MemoryBus(visibility_timeout=0.05)
    bus.put(events.INBOUND, "k", b"x")
    stuck, other = bus.consumer([events.INBOUND]), bus.consumer([events.INBOUND])
    (first,) = await stuck.receive(1, 1.0)
    (again,) = await other.receive(1, 1.0)  # the first consumer hung: no ack, no retry
    assert (again.id, again.attempts) == (first.id, 2)
    await stuck.ack(first)  # too late: it is no longer the first consumer's
    assert bus.pending(events.INBOUND) == 1
    await other.ack(again)
    assert bus.pending(events.INBOUND) == 0


def test_readiness_needs_a_recent_poll() -> None:
    health = WorkerHealth()
    assert not health.ready()
    health.started, health.last_poll = True, 100.0
    assert health.ready(now=110.0)
    assert not health.ready(now=200.0, stale_after=30.0)
    health.stopping = True
    assert not health.ready(now=110.0)


async def test_the_worker_keeps_at_most_concurrency_events_in_flight() -> None:
    bus = MemoryBus()
    for n in range(40):
        bus.put(events.INBOUND, f"k{n}", b"x")
    stop, running, peak = asyncio.Event(), [0], [0]
    done: list[str] = []

    async def handle(delivery: Delivery) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        done.append(delivery.id)
        if len(done) == 40:
            stop.set()

    health = await run_worker(bus.consumer([events.INBOUND]), handle, stop=stop, concurrency=5)
    assert peak[0] == 5
    assert health.max_in_flight == 5
    assert sorted(done, key=int) == [str(n) for n in range(1, 41)]
    with pytest.raises(ConfigError, match="concurrency"):
        await run_worker(bus.consumer([events.INBOUND]), handle, stop=stop, concurrency=0)


class FlakyConsumer:
    """A memory consumer whose bus is away for the first `outages` receives."""

    def __init__(self, bus: MemoryBus, outages: int) -> None:
        self.inner = bus.consumer([events.INBOUND])
        self.outages = outages

    async def receive(self, limit: int, max_wait: float) -> list[Delivery]:
        if self.outages:
            self.outages -= 1
            raise BusError("database restarting")
        return await self.inner.receive(limit, max_wait)

    async def ack(self, delivery: Delivery) -> None:
        await self.inner.ack(delivery)

    async def retry(self, delivery: Delivery, error: str) -> bool:
        return await self.inner.retry(delivery, error)

    async def lag(self) -> int | None:
        return await self.inner.lag()

    async def close(self) -> None:
        await self.inner.close()


async def test_the_worker_rides_out_a_bus_outage() -> None:
    bus = MemoryBus()
    bus.put(events.INBOUND, "k", b"x")
    stop = asyncio.Event()
    seen: list[str] = []

    async def handle(delivery: Delivery) -> None:
        seen.append(delivery.id)
        stop.set()

    flaky = FlakyConsumer(bus, outages=2)
    health = await run_worker(flaky, handle, stop=stop, concurrency=2)
    assert seen == ["1"]
    assert flaky.outages == 0
    assert health.handled == 1
