"""The worker loop: consume events, run a handler on each, with bounded concurrency.

Many events are in flight at once (a handler mostly awaits the model or the database),
while the consumer hands out at most one event per key at a time, so one customer's
messages are handled strictly in order. A handler that raises gets its event retried with
backoff, then dead-lettered; a handler that returns has its event acked (committed).

`stop` ends consumption: the loop stops receiving, lets the events in flight finish, acks
them, closes the consumer (Kafka commits) and returns. `serve_worker` wires SIGTERM and
SIGINT to `stop` for a process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.bus.retry import RetryPolicy
from fte_core.errors import BusError, ConfigError
from fte_core.ports import Delivery, EventConsumer

log = logging.getLogger(__name__)

Handler = Callable[[Delivery], Awaitable[None]]
_BACKOFF = RetryPolicy(max_attempts=1, backoff=0.5, max_backoff=15.0)


@dataclass(slots=True)
class WorkerHealth:
    """What readiness (`/api/v1/ready`) and metrics read from a running worker."""

    started: bool = False
    stopping: bool = False
    last_poll: float | None = None  # time.monotonic() of the last receive that returned
    in_flight: int = 0
    max_in_flight: int = 0
    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0
    lag: int | None = None
    _lag_checked: float = field(default=0.0, repr=False)

    def ready(self, *, stale_after: float = 30.0, now: float | None = None) -> bool:
        """Consuming, and has polled the bus recently (a stuck loop is not ready)."""
        if not self.started or self.stopping or self.last_poll is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self.last_poll <= stale_after


async def run_worker(
    consumer: EventConsumer,
    handle: Handler,
    *,
    stop: asyncio.Event,
    concurrency: int = 32,
    health: WorkerHealth | None = None,
    poll_timeout: float = 0.5,
    lag_interval: float = 5.0,
) -> WorkerHealth:
    """Consume until `stop` is set, then drain in-flight work and close the consumer."""
    if concurrency < 1:
        raise ConfigError(f"concurrency: must be at least 1, not {concurrency}")
    health = health or WorkerHealth()
    # Receive in batches (one claim or fetch for many events), not one event at a time.
    refill = max(1, concurrency // 4)
    failures = 0
    tasks: set[asyncio.Task[None]] = set()
    room = asyncio.Event()
    room.set()

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        health.in_flight = len(tasks)
        room.set()

    health.started = True
    try:
        while not stop.is_set():
            if tasks and concurrency - len(tasks) < refill:
                room.clear()
                await _first(room.wait(), stop.wait())
                continue
            try:
                batch = await consumer.receive(concurrency - len(tasks), poll_timeout)
                await _refresh_lag(consumer, health, lag_interval)
            except BusError as exc:
                # The broker or database is away: keep the work in flight, try again with
                # backoff; readiness turns false once the last good poll is stale.
                failures += 1
                delay = _BACKOFF.delay(failures)
                log.warning("receive failed (%s); retrying in %.1f s", exc, delay)
                await _first(asyncio.sleep(delay), stop.wait())
                continue
            failures = 0
            health.last_poll = time.monotonic()
            for delivery in batch:
                task = asyncio.create_task(_process(consumer, handle, delivery, health))
                tasks.add(task)
                task.add_done_callback(done)
            health.in_flight = len(tasks)
            health.max_in_flight = max(health.max_in_flight, len(tasks))
    finally:
        health.stopping = True
        if tasks:
            log.info("worker stopping: draining %d event(s) in flight", len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)
        health.in_flight = 0
        await consumer.close()
    return health


async def _process(
    consumer: EventConsumer, handle: Handler, delivery: Delivery, health: WorkerHealth
) -> None:
    try:
        try:
            await handle(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded, retried
            error = f"{type(exc).__name__}: {exc}"
            dead = await consumer.retry(delivery, error)
            if dead:
                health.dead_lettered += 1
                log.error(
                    "event %s dead-lettered after %d attempts: %s",
                    delivery.id,
                    delivery.attempts,
                    error,
                )
            else:
                health.retried += 1
                log.warning(
                    "event %s failed (attempt %d), will retry: %s",
                    delivery.id,
                    delivery.attempts,
                    error,
                )
            return
        await consumer.ack(delivery)
        health.handled += 1
    except BusError:
        # The bus could not record the outcome: the event comes back after its visibility
        # timeout (or the next consumer's start) and the idempotent handler skips it.
        log.exception("event %s: outcome not recorded; it will be redelivered", delivery.id)


async def _refresh_lag(consumer: EventConsumer, health: WorkerHealth, interval: float) -> None:
    now = time.monotonic()
    if now - health._lag_checked >= interval:
        health._lag_checked = now
        health.lag = await consumer.lag()


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) stop consuming; the loop then drains."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve_worker(
    consumer: EventConsumer,
    handle: Handler,
    *,
    concurrency: int = 32,
    health: WorkerHealth | None = None,
) -> WorkerHealth:
    """`run_worker` for a process: returns (exit 0) once a signal stopped it and it drained."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    return await run_worker(consumer, handle, stop=stop, concurrency=concurrency, health=health)
