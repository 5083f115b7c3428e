"""Gmail end to end over PostgreSQL: Pub/Sub pushes (tokens verified against a loopback
certificates endpoint) through the webhook, the mailbox synced from its stored history id,
each email stored and queued once, and the answer sent back in the customer's thread."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.channels.gmail.api import GmailClient
from adapters.channels.gmail.sender import GmailSender
from adapters.storage.postgres.mailboxes import PostgresMailboxes
from fte_core.models import Channel, DeliveryStatus, Direction, StoredMessage
from service.app import create_app
from service.bootstrap import Runtime, bootstrap
from service.settings import Settings
from service.settings_gmail import GmailSettings
from service.state import ServiceState
from tests import gmail_payloads as p
from tests.pubsub_tokens import AUDIENCE, PUSH_ACCOUNT, CertsServer, SigningKey

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("push-key")


@pytest.fixture
def certs(key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer({key.kid: key.cert_pem}).running() as server:
        yield server


def settings_for(pg_url: str, tmp_path: Path, certs: CertsServer) -> Settings:
    return Settings(
        storage="postgres",
        database_url=pg_url,
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        embedder="hashing",
        public_base_url="https://support.tasklane.example",
        token_secret="s" * 40,
        gmail=GmailSettings(
            mailbox=p.MAILBOX,
            token_file=str(tmp_path / "token.json"),  # the client is given below instead
            push_audience=AUDIENCE,
            push_service_account=PUSH_ACCOUNT,
            push_certs_url=certs.url,
        ),
    )


class Service:
    """The app over a runtime whose Gmail API (reads; replies) are canned sequences."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, key: SigningKey) -> None:
        self.runtime, self.client, self.key = runtime, client, key

    async def push(self, history_id: int, *, token: str | None = None) -> Any:
        data = json.dumps({"emailAddress": p.MAILBOX, "historyId": history_id})
        body = {
            "message": {
                "data": base64.b64encode(data.encode()).decode(),
                "messageId": f"push-{history_id}",
                "publishTime": "2026-11-30T18:12:45.123Z",
            },
            "subscription": "projects/tasklane-prod/subscriptions/gmail-push",
        }
        bearer = token if token is not None else self.key.token()
        return await self.client.post(
            "/api/v1/webhooks/gmail", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )

    async def take_in(self, number: str) -> None:
        """What a worker does with a form's receipt: take it in (its ticket opens), answer."""
        receipt = await self.runtime.store.receipt(number)
        assert receipt is not None
        await self.runtime.agent.handle(receipt.message)

    async def inbound(self) -> list[StoredMessage]:
        every = await self.runtime.store.messages_since(datetime(2000, 1, 1, tzinfo=UTC))
        return [m for m in every if m.direction is Direction.INBOUND]


@asynccontextmanager
async def serving(
    settings: Settings, key: SigningKey, reads: GmailClient, replies: GmailClient | None = None
) -> AsyncIterator[Service]:
    # as the service runs: replies stored with an fte.outbound event, delivered by Outbound
    senders = {Channel.EMAIL: GmailSender(replies)} if replies is not None else {}
    runtime = await bootstrap(settings, gmail_client=reads, senders=senders, queue_replies=True)
    await runtime.mailboxes.advance(p.MAILBOX, 1000)

    @asynccontextmanager
    async def state() -> AsyncIterator[ServiceState]:
        yield ServiceState(runtime=runtime, admin_token="a" * 40, bus="postgres")

    # The app's lifespan (its monitor refreshes in the background) and its requests run
    # on this test's event loop, like the runtime's pool: Litestar's AsyncTestClient runs
    # the lifespan on a thread's loop, and a pool used from two loops fails at random
    # ("asyncio.Lock ... bound to a different event loop").
    app = create_app(state)
    transport = httpx.ASGITransport(app=cast(Any, app))  # Litestar types its ASGI scope narrower
    try:
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield Service(runtime, client, key)
    finally:
        await runtime.aclose()


async def outbox_events(pg_pool: AsyncConnectionPool[Any]) -> int:
    async with pg_pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM outbox WHERE topic = 'fte.inbound'")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_an_email_becomes_one_ticket_and_is_answered_in_its_thread(
    pg_url: str,
    pg_pool: AsyncConnectionPool[Any],
    tmp_path: Path,
    certs: CertsServer,
    key: SigningKey,
) -> None:
    reads, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1")], 1010)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
        ]
    )
    metadata = {
        "id": "m1",
        "threadId": "t1",
        "payload": {
            "headers": [
                {"name": "Message-ID", "value": "<CAF3x9Zk1=abc123@mail.gmail.com>"},
                {"name": "Subject", "value": "How do I export my projects to CSV?"},
            ]
        },
    }
    replies, sent = p.mock_client(
        [p.ok(json.dumps(metadata)), p.ok('{"id": "r1", "threadId": "t1"}')]
    )
    async with serving(settings_for(pg_url, tmp_path, certs), key, reads, replies) as service:
        response = await service.push(1010)
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == 1
        again = await service.push(1010)  # Pub/Sub redelivers the same push
        assert again.status_code == 200
        assert again.json()["note"] == "nothing new"
        (stored,) = await service.inbound()
        assert await outbox_events(pg_pool) == 1
        assert await service.runtime.mailboxes.watermark(p.MAILBOX) == 1010

        # what a worker does with the fte.inbound event, then with the fte.outbound one
        outcome = await service.runtime.agent.handle_stored(stored.id)
        assert outcome.ticket.number == "TKT-000001"
        assert outcome.outbound_id is not None
        status = await service.runtime.outbound.deliver(outcome.outbound_id)
        assert status is DeliveryStatus.SENT
        again = await service.runtime.outbound.deliver(outcome.outbound_id)  # redelivered event
        assert again is DeliveryStatus.SENT
        assert len(sent.request_sequence) == 2  # one lookup, one send: never sent twice
        ready = await service.client.get("/api/v1/ready")
        assert ready.json()["channels"]["email"] == f"configured ({p.MAILBOX})"

    request = json.loads(sent.request_sequence[1][2])
    assert request["threadId"] == "t1"
    email = message_from_bytes(base64.urlsafe_b64decode(request["raw"]), policy=policy.default)
    assert email["To"] == "ana@example.com"
    assert email["Subject"] == "Re: How do I export my projects to CSV?"
    assert email["In-Reply-To"] == "<CAF3x9Zk1=abc123@mail.gmail.com>"
    assert email["References"] == "<CAF3x9Zk1=abc123@mail.gmail.com>"
    assert "TKT-000001" in email.get_content()


async def test_a_crash_between_history_and_storing_rereads_and_skips_nothing(
    pg_url: str,
    pg_pool: AsyncConnectionPool[Any],
    tmp_path: Path,
    certs: CertsServer,
    key: SigningKey,
) -> None:
    reads, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2")], 1010)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.error(503, "backendError"),  # Gmail fails on m2: the sync stops, unadvanced
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2"), ("m3", "t3")], 1020)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.ok(p.message_json("m2", p.LATIN1, thread_id="t2")),
            p.ok(p.message_json("m3", p.HTML_ONLY, thread_id="t3")),
        ]
    )
    async with serving(settings_for(pg_url, tmp_path, certs), key, reads) as service:
        failed = await service.push(1010)
        assert failed.status_code == 503  # Pub/Sub will deliver it again
        assert await service.runtime.mailboxes.watermark(p.MAILBOX) == 1000
        assert [m.provider_message_id for m in await service.inbound()] == ["m1"]
        retried = await service.push(1020)
        assert retried.status_code == 200, retried.text
        stored = await service.inbound()
        assert sorted(m.provider_message_id or "" for m in stored) == ["m1", "m2", "m3"]
        assert {m.channel for m in stored} == {Channel.EMAIL}
        assert await outbox_events(pg_pool) == 3  # m1 queued once, not again on the re-read
        assert await service.runtime.mailboxes.watermark(p.MAILBOX) == 1020
        tickets = {
            (await service.runtime.store.get_conversation(m.conversation_id)).ticket_number  # type: ignore[union-attr]
            for m in stored
        }
        assert len(tickets) == 3  # three customers (Ana, François, Li), a ticket each


async def test_push_authentication_and_bad_bodies(
    pg_url: str, tmp_path: Path, certs: CertsServer, key: SigningKey
) -> None:
    reads, http = p.mock_client([])
    async with serving(settings_for(pg_url, tmp_path, certs), key, reads) as service:
        missing = await service.client.post("/api/v1/webhooks/gmail", json={})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        for token in (
            key.token(aud="https://other.example/push"),
            key.token(exp=1_000_000_000, iat=999_999_000),
            SigningKey("push-key").token(),  # forged: same key id, another key
            key.token(email="someone@else.iam.gserviceaccount.com"),
        ):
            refused = await service.push(1010, token=token)
            assert refused.status_code == 401, token
        malformed = await service.client.post(
            "/api/v1/webhooks/gmail",
            content=b"{not json",
            headers={"Authorization": f"Bearer {key.token()}", "Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"] == "validation"
    assert http.request_sequence == []  # nothing reached Gmail


async def test_mailbox_watermark_only_moves_forward(pg_pool: AsyncConnectionPool[Any]) -> None:
    state = PostgresMailboxes(pg_pool)
    assert await state.watermark(p.MAILBOX) is None
    expires = datetime(2026, 12, 7, tzinfo=UTC)
    assert await state.record_watch(p.MAILBOX, 500, expires) == 500  # the first watch starts it
    await state.advance(p.MAILBOX, 900)
    await state.advance(p.MAILBOX, 700)  # a late, older sync never moves it back
    assert await state.watermark(p.MAILBOX) == 900
    assert await state.record_watch(p.MAILBOX, 950, expires) == 900  # a renewal keeps it
    assert await state.watch_expiry(p.MAILBOX) == expires


async def test_an_email_continues_the_customers_web_form_conversation(
    pg_url: str, tmp_path: Path, certs: CertsServer, key: SigningKey
) -> None:
    reads, _ = p.mock_client(
        [
            p.ok(p.history_json([("m1", "t1")], 1010)),
            p.ok(p.message_json("m1", p.REPLY_WITH_HISTORY, thread_id="t1")),
        ]
    )
    form = {
        "name": "Ana Ruiz",
        "email": "ana@example.com",
        "subject": "CSV export",
        "category": "general",
        "message": "How do I export my projects to CSV?",
    }
    async with serving(settings_for(pg_url, tmp_path, certs), key, reads) as service:
        receipt = await service.client.post("/api/v1/support/form", json=form)
        assert receipt.status_code == 201, receipt.text
        await service.take_in(receipt.json()["ticket_id"])  # the worker, before the email
        assert (await service.push(1010)).status_code == 200
        web, email = sorted(await service.inbound(), key=lambda m: m.channel != Channel.WEB_FORM)
        assert (web.channel, email.channel) == (Channel.WEB_FORM, Channel.EMAIL)
        assert email.conversation_id == web.conversation_id  # one customer, one conversation
        view = await service.client.get(
            f"/api/v1/conversations/{web.conversation_id}",
            headers={"Authorization": "Bearer " + "a" * 40},
        )
        inbound = [m for m in view.json()["messages"] if m["direction"] == "inbound"]
        assert sorted(m["channel"] for m in inbound) == ["email", "web_form"]
