"""What a worker does with each event it consumes."""

from __future__ import annotations

import asyncio
import logging
import time

from fte_core import events
from fte_core.errors import InProgress
from fte_core.pipeline import Agent
from fte_core.ports import Delivery
from service.worker import Handler

log = logging.getLogger(__name__)

TOPICS = (events.INBOUND, events.ESCALATIONS, events.METRICS)


def event_handler(agent: Agent, *, wait_for_peer: float = 150.0) -> Handler:
    """`fte.inbound` runs the agent on the stored message (decided once: a copy another
    worker is deciding is waited for, not counted as a failure); escalations and metrics
    are logged for operators (the digest reads the stored records)."""

    async def handle(delivery: Delivery) -> None:
        event = events.decode(delivery.payload)
        if isinstance(event, events.InboundEvent):
            await _decide(agent, event.message_id, wait_for_peer)
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


async def _decide(agent: Agent, message_id: str, wait_for_peer: float) -> None:
    deadline = time.monotonic() + wait_for_peer
    while True:
        try:
            await agent.handle_stored(message_id)
            return
        except InProgress:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
