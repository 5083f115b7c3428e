"""A deliverer process SIGKILLed after Twilio accepted every part (and the ledger recorded
them) but before the reply was marked sent: the next deliverer sends nothing again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.channels.whatsapp.sender import TwilioSender
from adapters.storage.postgres.deliveries import PostgresDeliveries
from adapters.storage.postgres.store import PostgresStore
from fte_core.delivery import Outbound
from fte_core.identity import identifiers_for
from fte_core.models import Channel, DeliveryStatus, InboundMessage, Verification
from fte_core.testing import InMemoryBus
from fte_core.tools import DELIVERY_LEASE
from tests.fake_twilio import FakeTwilio, fake_twilio

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
LONG = " ".join(f"Sentence number {i} of a long answer from a person." for i in range(90))


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


async def test_a_killed_deliverer_never_causes_a_resend(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], twilio: FakeTwilio
) -> None:
    store = PostgresStore(pg_pool)
    message = InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id="SM" + "d" * 32,
        text="Can someone call me back?",
        received_at=datetime.now(UTC),
        sender_phone="+14155550177",
        verified_by=Verification.PROVIDER_SIGNED,
    )
    turn = await store.open_turn(
        message, identifiers_for(message), "Ana", datetime.now(UTC), timedelta(hours=24)
    )
    reply = await store.save_human_reply(turn.thread.ticket.number, LONG, "Bea")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.delivery_crash_worker",
        pg_url,
        reply.id,
        twilio.base_url,
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert len(twilio.accepted) == 3  # Twilio has every part
    stored = await store.get_message(reply.id)
    assert stored is not None
    assert stored.delivery_status is DeliveryStatus.SENDING  # the dead process held it
    ledger = PostgresDeliveries(pg_pool)
    recorded = await ledger.state(reply.id)
    assert recorded is not None
    assert [p.provider_message_id for p in recorded.parts] == [a["Sid"] for a in twilio.accepted]

    later = Outbound(
        store=store,
        ledger=ledger,
        senders={
            Channel.WHATSAPP: TwilioSender.connect(
                "AC" + "5" * 32, "t" * 32, "+14155238886", api_base=twilio.base_url
            )
        },
        bus=InMemoryBus(),
        clock=lambda: datetime.now(UTC) + DELIVERY_LEASE * 2,  # the dead one's lease ran out
    )
    assert await later.deliver(reply.id) is DeliveryStatus.SENT
    assert len(twilio.requests) == 3  # nothing was sent again
    again = await store.get_message(reply.id)
    assert again is not None
    assert again.provider_message_id == twilio.accepted[0]["Sid"]
