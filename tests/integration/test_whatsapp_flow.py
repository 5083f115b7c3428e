"""WhatsApp end to end over PostgreSQL: Twilio-signed webhooks into the real app, the
worker (fte.inbound then fte.outbound), the real TwilioSender against a local fake Twilio,
signed status callbacks back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from twilio.request_validator import RequestValidator

from service.app import create_app
from service.bootstrap import Runtime, bootstrap
from service.handlers import TOPICS, event_handler
from service.settings import Settings
from service.state import ServiceState
from service.worker import run_worker
from tests.fake_twilio import FakeTwilio, Scripted, fake_twilio

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
BASE = "https://support.example.com"
TOKEN = "w" * 32
ACCOUNT = "AC" + "3" * 32
PATH = "/api/v1/webhooks/whatsapp"
PHONE = "+14155550142"


def sid(n: int) -> str:
    return "SM" + f"{n:032x}"


def signed(path: str, form: dict[str, str], *, token: str = TOKEN) -> dict[str, Any]:
    signature = RequestValidator(token).compute_signature(BASE + path, form)
    return {
        "content": urlencode(form),
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    }


def message_form(n: int, body: str, phone: str = PHONE) -> dict[str, str]:
    return {
        "MessageSid": sid(n),
        "AccountSid": ACCOUNT,
        "From": f"whatsapp:{phone}",
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Ana Lima",
    }


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


def settings_for(pg_url: str, tmp_path: Path, twilio: FakeTwilio | None) -> Settings:
    extra: dict[str, Any] = {}
    if twilio is not None:
        extra = {
            "twilio_account_sid": ACCOUNT,
            "twilio_auth_token": TOKEN,
            "twilio_whatsapp_from": "+14155238886",
            "twilio_api_base": twilio.base_url,
        }
    return Settings(
        database_url=pg_url,
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        embedder="hashing",
        public_base_url=BASE,
        token_secret="s" * 40,
        **extra,
    )


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The app and a worker in this process, as `fte serve` runs them."""
    runtime = await bootstrap(settings, consume=TOPICS, queue_replies=True)
    stop = asyncio.Event()
    consumer = runtime.buses.consumer
    assert consumer is not None
    worker = asyncio.create_task(
        run_worker(consumer, event_handler(runtime.agent, runtime.outbound), stop=stop)
    )

    @asynccontextmanager
    async def unused() -> AsyncIterator[ServiceState]:
        raise AssertionError("the lifespan does not run: the state is set below")
        yield

    app = create_app(unused)
    # in this event loop (the pool's): litestar's test client would run the app in a thread
    app.state.service = ServiceState(runtime=runtime, admin_token="a" * 40, bus="postgres")
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, runtime
    finally:
        stop.set()
        await worker
        await runtime.aclose()


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def rows(pool: AsyncConnectionPool[Any], sql: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(sql)
        return list(await cursor.fetchall())


async def test_a_redelivered_webhook_is_one_message_and_one_reply(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        form = message_form(1, "How do I reset my password?")
        answers = await asyncio.gather(*(client.post(PATH, **signed(PATH, form)) for _ in range(3)))
        for answer in answers:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("application/xml")
            assert answer.text.endswith("<Response/>")

        async def sent() -> bool:
            return bool(twilio.accepted)

        await until(sent)
        again = await client.post(PATH, **signed(PATH, form))  # after the answer went out
        assert again.status_code == 200
        await asyncio.sleep(1.0)  # time for a duplicate to show up, if one were sent
    inbound = await rows(pg_pool, "SELECT count(*) FROM messages WHERE direction = 'inbound'")
    replies = await rows(
        pg_pool, "SELECT delivery_status FROM messages WHERE direction = 'outbound'"
    )
    assert inbound == [(1,)]
    assert len(replies) == 1
    assert replies[0][0] == "sent"
    assert len({a["Body"] for a in twilio.accepted}) == len(twilio.accepted)
    assert all(a["To"] == f"whatsapp:{PHONE}" for a in twilio.accepted)


async def test_quick_messages_are_answered_in_order_once_each(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    questions = (
        "How do I reset my password?",
        "How do I export my tasks to CSV?",
        "How do I invite a guest to a project?",
    )
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        for n, question in enumerate(questions, start=1):
            answer = await client.post(PATH, **signed(PATH, message_form(n, question)))
            assert answer.status_code == 200

        async def all_answered() -> bool:
            found = await rows(
                pg_pool,
                "SELECT count(*) FROM messages WHERE direction = 'outbound'"
                " AND delivery_status IN ('sent', 'delivered', 'read')",
            )
            return found[0][0] >= len(questions) or bool(
                await rows(pg_pool, "SELECT 1 FROM dead_letters")
            )

        await until(all_answered, 90)
    assert await rows(pg_pool, "SELECT count(*) FROM dead_letters") == [(0,)]
    order = await rows(
        pg_pool,
        """SELECT i.provider_message_id, p.provider_message_id FROM delivery_parts p
           JOIN messages o ON o.id = p.message_id JOIN messages i ON i.id = o.in_reply_to""",
    )
    answering = dict((part, inbound) for inbound, part in order)
    sequence = [answering[a["Sid"]] for a in twilio.accepted]
    collapsed = [s for i, s in enumerate(sequence) if i == 0 or sequence[i - 1] != s]
    assert collapsed == [sid(1), sid(2), sid(3)]  # each answered once, in the order asked


async def test_status_callbacks_update_the_reply(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    status_path = PATH + "/status"
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        await client.post(PATH, **signed(PATH, message_form(7, "How do I reset my password?")))

        async def sent() -> bool:
            found = await rows(
                pg_pool,
                "SELECT 1 FROM messages WHERE direction = 'outbound' AND delivery_status = 'sent'",
            )
            return bool(found)

        await until(sent)
        for accepted in twilio.accepted:
            report = {"MessageSid": accepted["Sid"], "MessageStatus": "delivered"}
            answer = await client.post(status_path, **signed(status_path, report))
            assert answer.status_code == 204
        unsigned = {"MessageSid": twilio.accepted[0]["Sid"], "MessageStatus": "failed"}
        forged = await client.post(status_path, **signed(status_path, unsigned, token="x" * 32))
        assert forged.status_code == 403
    replies = await rows(
        pg_pool, "SELECT delivery_status FROM messages WHERE direction = 'outbound'"
    )
    assert replies == [("delivered",)]


async def test_bad_signatures_are_refused(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    form = message_form(9, "hello")
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        good = signed(PATH, form)
        tampered = {**good, "content": urlencode({**form, "Body": "I want a refund"})}
        assert (await client.post(PATH, **tampered)).status_code == 403
        http_sig = RequestValidator(TOKEN).compute_signature(
            BASE.replace("https", "http") + PATH, form
        )
        wrong_scheme = {**good, "headers": {**good["headers"], "X-Twilio-Signature": http_sig}}
        assert (await client.post(PATH, **wrong_scheme)).status_code == 403
        missing = {**good, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
        answer = await client.post(PATH, **missing)
        assert answer.status_code == 403
        assert "missing" in answer.json()["detail"]
        bad_form = signed(PATH, {**form, "From": "whatsapp:+12"})
        answer = await client.post(PATH, **bad_form)
        assert answer.status_code == 400
        assert answer.json()["fields"] == {"From": "not an international phone number: '+12'"}
        ready = (await client.get("/api/v1/ready")).json()
        assert ready["channels"]["whatsapp"] == "configured"
    assert await rows(pg_pool, "SELECT count(*) FROM messages") == [(0,)]
    assert twilio.requests == []


async def test_unconfigured_whatsapp_answers_503(pg_url: str, tmp_path: Path) -> None:
    async with service(settings_for(pg_url, tmp_path, None)) as (client, _):
        answer = await client.post(PATH, **signed(PATH, message_form(1, "hi")))
        assert answer.status_code == 503
        assert "TWILIO_AUTH_TOKEN" in answer.json()["detail"]
        status = await client.post(PATH + "/status", content="MessageSid=x")
        assert status.status_code == 503
        ready = (await client.get("/api/v1/ready")).json()
        assert ready["channels"]["whatsapp"].startswith("not configured")
        assert ready["channels"]["web_form"] == "configured"


async def test_an_operators_reply_goes_out_through_the_outbound_queue(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        await client.post(PATH, **signed(PATH, message_form(3, "How do I reset my password?")))

        async def answered() -> bool:
            return bool(twilio.accepted)

        await until(answered)
        number = (await rows(pg_pool, "SELECT number FROM tickets"))[0][0]
        reply = await client.post(
            f"/api/v1/tickets/{number}/reply",
            json={"text": "Hi Ana, I reset it for you.", "operator": "Bea"},
            headers={"Authorization": "Bearer " + "a" * 40},
        )
        assert reply.status_code == 201
        assert reply.json()["delivery_status"] == "queued"

        async def human_sent() -> bool:
            return any("I reset it for you" in b for b in twilio.bodies())

        await until(human_sent)
    human = await rows(
        pg_pool,
        "SELECT delivery_status, provider_message_id FROM messages WHERE author = 'human'",
    )
    assert human == [("sent", twilio.accepted[-1]["Sid"])]


async def test_a_media_message_is_stored_and_told_only_text_is_read(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    form = {
        **message_form(4, ""),
        "NumMedia": "1",
        "MediaContentType0": "image/jpeg",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC3/Messages/MM4/Media/ME4",
    }
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        first = await client.post(PATH, **signed(PATH, form))
        again = await client.post(PATH, **signed(PATH, form))
    assert "only read text" in first.text
    assert again.text.endswith("<Response/>")  # a redelivery is not told twice
    stored = await rows(
        pg_pool, "SELECT content, attachments::text FROM messages WHERE direction = 'inbound'"
    )
    assert len(stored) == 1
    assert "image/jpeg" in stored[0][0]
    assert "ME4" in stored[0][1]


async def test_429_then_201_is_retried_by_the_bus_and_sent_once(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    twilio.script.append(Scripted(429, 20429, "Too Many Requests"))
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        await client.post(PATH, **signed(PATH, message_form(5, "How do I reset my password?")))

        async def sent() -> bool:
            found = await rows(
                pg_pool,
                "SELECT 1 FROM messages WHERE direction = 'outbound' AND delivery_status = 'sent'",
            )
            return bool(found)

        await until(sent)
    assert len(twilio.requests) == len(twilio.accepted) + 1  # the refused try, then each part
    assert len({a["Body"] for a in twilio.accepted}) == len(twilio.accepted)
    assert await rows(pg_pool, "SELECT count(*) FROM dead_letters") == [(0,)]


async def test_63016_hands_the_ticket_to_a_person(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    twilio.script.append(Scripted(400, 63016, "Failed to send freeform message"))
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        await client.post(PATH, **signed(PATH, message_form(6, "How do I reset my password?")))

        async def handed_over() -> bool:
            found = await rows(pg_pool, "SELECT 1 FROM tickets WHERE status = 'escalated'")
            return bool(found)

        await until(handed_over)
    ticket = await rows(pg_pool, "SELECT owner, escalation_reason FROM tickets")
    assert ticket == [("human", "delivery_failed")]
    reply = await rows(
        pg_pool, "SELECT delivery_status, delivery_error FROM messages WHERE direction = 'outbound'"
    )
    assert reply[0][0] == "undelivered"
    assert "63016" in reply[0][1]
    assert twilio.accepted == []
    assert len(twilio.requests) == 1  # never retried


async def test_a_web_form_customer_continues_on_whatsapp(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path, twilio: FakeTwilio
) -> None:
    async with service(settings_for(pg_url, tmp_path, twilio)) as (client, _):
        form = await client.post(
            "/api/v1/support/form",
            json={
                "name": "Ana Lima",
                "email": "ana@example.com",
                "phone": PHONE,
                "subject": "Password",
                "category": "general",
                "message": "How do I reset my password?",
            },
        )
        assert form.status_code == 201

        def answered(count: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                found = await rows(
                    pg_pool,
                    "SELECT count(*) FROM messages WHERE direction = 'outbound'"
                    " AND delivery_status IN ('sent', 'delivered')",
                )
                return bool(found[0][0] >= count)

            return check

        await until(answered(1), 90)
        await client.post(PATH, **signed(PATH, message_form(8, "And how do I export to CSV?")))
        await until(answered(2), 90)
        conversation = (await rows(pg_pool, "SELECT id FROM conversations"))[0][0]
        view = await client.get(
            f"/api/v1/conversations/{conversation}",
            headers={"Authorization": "Bearer " + "a" * 40},
        )
    assert await rows(pg_pool, "SELECT count(*) FROM customers") == [(1,)]
    assert await rows(pg_pool, "SELECT count(*) FROM conversations") == [(1,)]
    channels = [(m["direction"], m["channel"]) for m in view.json()["messages"]]
    assert channels == [
        ("inbound", "web_form"),
        ("outbound", "web_form"),
        ("inbound", "whatsapp"),
        ("outbound", "whatsapp"),
    ]
    statuses = await rows(
        pg_pool,
        "SELECT channel, delivery_status FROM messages WHERE direction = 'outbound'"
        " ORDER BY created_at",
    )
    assert statuses == [("web_form", "delivered"), ("whatsapp", "sent")]
