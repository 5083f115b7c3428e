"""One customer across the three channels (issue 9): a web form that gave an email address
and a phone, then an email from that address (Gmail push, DKIM-verified sender), then a
WhatsApp message from that phone (Twilio-signed): one customer, one conversation, and the
operator's conversation view lists all three in order with their channel labels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool
from twilio.request_validator import RequestValidator

from tests import gmail_payloads as p
from tests.integration.test_gmail_flow import serving, settings_for
from tests.pubsub_tokens import CertsServer, SigningKey

pytestmark = pytest.mark.postgres
TOKEN = "w" * 32
PHONE = "+14155550142"
WEBHOOK = "/api/v1/webhooks/whatsapp"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey("push-key")


@pytest.fixture
def certs(key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer({key.kid: key.cert_pem}).running() as server:
        yield server


def whatsapp(base: str, body: str) -> dict[str, Any]:
    form = {
        "MessageSid": "SM" + "c" * 32,
        "AccountSid": "AC" + "3" * 32,
        "From": f"whatsapp:{PHONE}",
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Ana Ruiz",
    }
    signature = RequestValidator(TOKEN).compute_signature(base + WEBHOOK, form)
    return {
        "content": urlencode(form),
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    }


async def test_form_then_email_then_whatsapp_is_one_conversation(
    pg_url: str,
    pg_pool: AsyncConnectionPool[Any],
    tmp_path: Path,
    certs: CertsServer,
    key: SigningKey,
) -> None:
    settings = msgspec.structs.replace(
        settings_for(pg_url, tmp_path, certs),
        twilio_account_sid="AC" + "3" * 32,
        twilio_auth_token=TOKEN,
        twilio_whatsapp_from="+14155238886",
    )
    now_ms = int(time.time() * 1000) + 4_000  # Gmail's time of the email
    reads, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1")], 1010)),
            p.ok(p.message_json("m1", p.REPLY_WITH_HISTORY, thread_id="t1", internal_date=now_ms)),
        ]
    )
    form = {
        "name": "Ana Ruiz",
        "email": "ana@example.com",
        "phone": PHONE,
        "subject": "CSV export",
        "category": "general",
        "message": "How do I export my projects to CSV?",
    }
    async with serving(settings, key, reads) as service:
        receipt = await service.client.post("/api/v1/support/form", json=form)
        assert receipt.status_code == 201, receipt.text
        # a worker takes the form in (the POST only reserved its ticket) before the email
        await service.take_in(receipt.json()["ticket_id"])
        assert (await service.push(1010)).status_code == 200
        await asyncio.sleep(max(0.0, now_ms / 1000 - time.time()) + 0.1)  # WhatsApp last
        answer = await service.client.post(
            WEBHOOK, **whatsapp(settings.base_url, "And can I schedule the export weekly?")
        )
        assert answer.status_code == 200, answer.text
        inbound = await service.inbound()
        assert sorted(m.channel.value for m in inbound) == ["email", "web_form", "whatsapp"]
        assert len({m.conversation_id for m in inbound}) == 1
        view = await service.client.get(
            f"/api/v1/conversations/{inbound[0].conversation_id}",
            headers={"Authorization": "Bearer " + "a" * 40},
        )
    assert view.status_code == 200
    messages = [m for m in view.json()["messages"] if m["direction"] == "inbound"]
    assert [m["created_at"] for m in messages] == sorted(m["created_at"] for m in messages)
    assert sorted(m["channel"] for m in messages) == ["email", "web_form", "whatsapp"]
    assert messages[-1]["channel"] == "whatsapp"  # in order of arrival, labelled
    async with pg_pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM customers")
        assert await cursor.fetchone() == (1,)
