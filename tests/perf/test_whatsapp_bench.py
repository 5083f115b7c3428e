"""WhatsApp: the signed webhook's intake latency beside the web form's (same app, same run),
and a reply's delivery through the ledger to a local fake Twilio over HTTP beside the same
delivery to an in-memory sender. Over embedded PostgreSQL, in process, sequential.

SPEC 4: acknowledge fast (< 500 ms, aim far lower). Run: `make bench` or
`.venv/bin/pytest -q -s tests/perf/test_whatsapp_bench.py` (FTE_BENCH_RUNS, default 3).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from adapters.channels.whatsapp.sender import TwilioSender
from fte_core.delivery import Outbound
from fte_core.identity import identifiers_for
from fte_core.models import Channel, InboundMessage, Verification
from fte_core.ports import ChannelSender
from fte_core.testing import RecordingSender
from service.app import create_app
from service.bootstrap import Runtime, bootstrap
from service.settings import Settings
from service.state import ServiceState
from tests.fake_twilio import FakeTwilio, fake_twilio

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("FTE_BENCH_RUNS", "3"))
N = 200
BASE = "https://support.example.com"
TOKEN = "b" * 32
PATH = "/api/v1/webhooks/whatsapp"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, runs: list[list[float]]) -> dict[str, float]:
    figures = {
        q: statistics.median(pct(r, p) for r in runs)
        for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }
    print(
        f"{name:<34} p50 {figures['p50']:7.2f} ms  p95 {figures['p95']:7.2f} ms"
        f"  p99 {figures['p99']:7.2f} ms  (median of {len(runs)} runs x {len(runs[0])})"
    )
    return figures


@asynccontextmanager
async def served(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = Settings(
        database_url=pg_url,
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        embedder="hashing",
        public_base_url=BASE,
        token_secret="s" * 40,
        twilio_account_sid="AC" + "4" * 32,
        twilio_auth_token=TOKEN,
        twilio_whatsapp_from="+14155238886",
    )
    runtime = await bootstrap(settings, queue_replies=True)

    @asynccontextmanager
    async def unused() -> AsyncIterator[ServiceState]:
        raise AssertionError("state set below")
        yield

    app = create_app(unused)
    app.state.service = ServiceState(runtime=runtime, admin_token="a" * 40, bus="postgres")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, runtime
    finally:
        await runtime.aclose()


async def timed(calls: list[Callable[[], Awaitable[None]]]) -> list[float]:
    taken = []
    for call in calls:
        started = time.perf_counter()
        await call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def webhook(client: httpx.AsyncClient, run: int, n: int) -> Callable[[], Awaitable[None]]:
    form = {
        "MessageSid": "SM" + f"{run:08x}{n:024x}",
        "From": f"whatsapp:+1415{run:03d}{n:05d}",
        "Body": "How do I reset my password?",
        "NumMedia": "0",
        "ProfileName": "Bench",
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(BASE + PATH, form),
    }

    async def call() -> None:
        answer = await client.post(PATH, content=urlencode(form), headers=headers)
        assert answer.status_code == 200

    return call


def web_form(client: httpx.AsyncClient, run: int, n: int) -> Callable[[], Awaitable[None]]:
    body = {
        "name": "Bench",
        "email": f"bench{run}-{n}@example.com",
        "subject": "Password",
        "category": "general",
        "message": "How do I reset my password?",
    }

    async def call() -> None:
        answer = await client.post("/api/v1/support/form", json=body)
        assert answer.status_code == 201

    return call


async def test_webhook_intake_beside_the_web_form(pg_url: str, tmp_path: Path) -> None:
    whatsapp_runs, form_runs = [], []
    async with served(pg_url, tmp_path) as (client, _):
        for run in range(RUNS):
            form_runs.append(await timed([web_form(client, run, n) for n in range(N)]))
            whatsapp_runs.append(await timed([webhook(client, run, n) for n in range(N)]))
    form = summary("web form POST (baseline)", form_runs)
    whatsapp = summary("WhatsApp webhook POST (signed)", whatsapp_runs)
    print(f"ratio WhatsApp / web form at p50: {whatsapp['p50'] / form['p50']:.2f}")
    assert whatsapp["p99"] < 500  # SPEC 4's floor for an acknowledgement


async def test_delivery_to_twilio_beside_an_in_memory_sender(pg_url: str, tmp_path: Path) -> None:
    with fake_twilio() as fake:
        await _compare_senders(pg_url, tmp_path, fake)


async def _compare_senders(pg_url: str, tmp_path: Path, fake: FakeTwilio) -> None:
    async with served(pg_url, tmp_path) as (_, runtime):
        senders: dict[str, ChannelSender] = {
            "memory": RecordingSender(),
            "twilio": TwilioSender.connect(
                "AC" + "4" * 32, TOKEN, "+14155238886", api_base=fake.base_url
            ),
        }
        results: dict[str, list[list[float]]] = {"memory": [], "twilio": []}
        for run in range(RUNS):
            for kind, sender in senders.items():
                ids = [await _human_reply(runtime, f"{kind}{run}", n) for n in range(N)]
                outbound = Outbound(
                    store=runtime.store,
                    ledger=runtime.outbound.ledger,
                    senders={Channel.WHATSAPP: sender},
                    bus=runtime.bus,
                )
                results[kind].append(await timed([_deliver(outbound, i) for i in ids]))
        assert len(fake.accepted) == N * RUNS
    memory = summary("deliver, in-memory sender (baseline)", results["memory"])
    twilio = summary("deliver, Twilio client over HTTP", results["twilio"])
    print(f"ratio Twilio / in-memory at p50: {twilio['p50'] / memory['p50']:.2f}")


async def _human_reply(runtime: Runtime, tag: str, n: int) -> str:
    """A WhatsApp customer's message and a person's one-part answer to it."""
    message = InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id=f"bench-{tag}-{n}",
        text="How do I reset my password?",
        received_at=datetime.now(UTC),
        sender_phone=f"+1416{abs(hash(tag)) % 1000:03d}{n:05d}",
        verified_by=Verification.PROVIDER_SIGNED,
    )
    turn = await runtime.store.open_turn(
        message, identifiers_for(message), None, datetime.now(UTC), timedelta(hours=24)
    )
    stored = await runtime.store.save_human_reply(turn.thread.ticket.number, "Done.", "Bea")
    return stored.id


def _deliver(outbound: Outbound, message_id: str) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        await outbound.deliver(message_id)

    return call
