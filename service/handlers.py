"""What a worker does with each event it consumes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fte_core import events
from fte_core.delivery import Outbound
from fte_core.errors import InProgress
from fte_core.pipeline import Agent
from fte_core.ports import Delivery
from fte_core.tools import DELIVERY_LEASE
from service.worker import Handler

log = logging.getLogger(__name__)

TOPICS = (events.INBOUND, events.OUTBOUND, events.ESCALATIONS, events.METRICS)
# a deliverer that died holding a reply lets go when its lease runs out
_WAIT_FOR_SENDER = DELIVERY_LEASE.total_seconds() + 30.0


def event_handler(
    agent: Agent,
    outbound: Outbound,
    *,
    max_attempts: int = 5,
    wait_for_peer: float = 150.0,
) -> Handler:
    """`fte.inbound` runs the agent on the stored message (decided once: a copy another
    worker is deciding is waited for, not counted as a failure); `fte.outbound` delivers a
    stored reply through its channel's sender (a delivery error is retried by the bus with
    backoff; on the last attempt it is given up and the ticket goes to a person);
    escalations and metrics are logged for operators (the digest reads the stored records)."""

    async def handle(delivery: Delivery) -> None:
        event = events.decode(delivery.payload)
        if isinstance(event, events.InboundEvent):
            await _when_free(lambda: agent.handle_stored(event.message_id), wait_for_peer)
        elif isinstance(event, events.ReceivedEvent):
            await _when_free(lambda: agent.handle_received(event), wait_for_peer)
        elif isinstance(event, events.OutboundEvent):
            last = delivery.attempts >= max_attempts
            await _when_free(
                lambda: outbound.deliver(event.message_id, last_attempt=last), _WAIT_FOR_SENDER
            )
        elif isinstance(event, events.EscalationEvent):
            log.info(
                "escalated %s to a person: %s (%s)",
                event.ticket_number,
                ", ".join(event.reasons),
                event.urgency.value,
            )
        elif isinstance(event, events.MetricsEvent):
            log.debug("metrics %s %s %.1f ms", event.channel, event.action, event.latency_ms)

    return handle


async def _when_free(work: Callable[[], Awaitable[object]], wait_for_peer: float) -> None:
    """Run `work`; while another worker holds the same message (InProgress), wait for it."""
    deadline = time.monotonic() + wait_for_peer
    while True:
        try:
            await work()
            return
        except InProgress:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
