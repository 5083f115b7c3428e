"""A deliverer process that dies (SIGKILL, no clean-up) right after Twilio accepted and the
ledger recorded every part of a reply, before the reply is marked sent (run with
`python -m tests.integration.delivery_crash_worker URL MESSAGE_ID TWILIO_BASE`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from adapters.channels.whatsapp.sender import TwilioSender
from adapters.storage.postgres.deliveries import PostgresDeliveries
from adapters.storage.postgres.pool import open_pool
from adapters.storage.postgres.store import PostgresStore
from fte_core.delivery import Outbound
from fte_core.models import Channel, DeliveryStatus
from fte_core.testing import InMemoryBus


class DiesBeforeMarkingSent(PostgresDeliveries):
    async def settle(self, message_id: str) -> DeliveryStatus:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


async def main(url: str, message_id: str, twilio_base: str) -> None:
    pool = await open_pool(url, max_size=2)
    sender = TwilioSender.connect("AC" + "5" * 32, "t" * 32, "+14155238886", api_base=twilio_base)
    outbound = Outbound(
        store=PostgresStore(pool),
        ledger=DiesBeforeMarkingSent(pool),
        senders={Channel.WHATSAPP: sender},
        bus=InMemoryBus(),
    )
    await outbound.deliver(message_id)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
