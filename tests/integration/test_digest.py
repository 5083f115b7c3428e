"""The daily digest and the honest resolution rate on seeded traffic over PostgreSQL:
real agent, real store, real report store; the clock is the test's."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core.models import Channel
from fte_core.policy import PolicyEngine
from service import digest_render
from service.digest import Digest, encode
from service.digest_job import digest_schedule, make_digest, publish_digest
from service.reports import channel_report
from tests.integration.report_world import World, shared_policy, world

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 20)
D0 = datetime(2026, 11, 20, tzinfo=UTC)


def at(hours: float) -> datetime:
    return D0 + timedelta(hours=hours)


async def _seed(w: World) -> None:
    # email, Ana: answered, then "thanks, that worked" -> confirmed
    await w.send(at(9), "How do I export tasks to CSV?", email="ana@example.com")
    await w.send(at(10), "Thanks, that worked!", email="ana@example.com")
    # email, Fay: asks for a person -> handed over
    await w.send(at(9.5), "Can I talk to a human please?", email="fay@example.com")
    # web form, Ben: answered at 11:00; back on WhatsApp 71 hours later -> re-contacted
    await w.send(
        at(11),
        "How do I set up a webhook for task.completed events?",
        channel=Channel.WEB_FORM,
        email="ben@example.com",
        phone="+15550100001",
    )
    # web form, Cleo: answered at 12:00; back on WhatsApp 73 hours later -> quiet (resolved)
    await w.send(
        at(12),
        "How do I set up a webhook for task.completed events?",
        channel=Channel.WEB_FORM,
        email="cleo@example.com",
        phone="+15550100002",
    )
    # WhatsApp, Eve: a refund -> handed over
    await w.send(
        at(13), "i want a refund for last month", channel=Channel.WHATSAPP, phone="+15550100003"
    )
    # the day before: one answered email message, for the sentiment trend
    await w.send(at(-12), "How do I export tasks to CSV?", email="dan@example.com")
    # after the day: the re-contacts
    await w.send(
        at(11) + timedelta(hours=71, seconds=1),
        "the webhook is still inactive, it never became active",
        channel=Channel.WHATSAPP,
        phone="+15550100001",
    )
    await w.send(
        at(12) + timedelta(hours=73),
        "how do I export tasks to CSV",
        channel=Channel.WHATSAPP,
        phone="+15550100002",
    )


@pytest.fixture(scope="module")
def policy() -> Iterator[PolicyEngine]:
    engine = shared_policy()
    yield engine
    engine.close()


@pytest.fixture
async def seeded(
    pg_pool: AsyncConnectionPool[Any], tmp_path: Path, policy: PolicyEngine
) -> AsyncIterator[World]:
    async with world(pg_pool, at(-12), tmp_path, policy=policy) as w:
        await _seed(w)
        yield w


def _channel(digest: Digest, channel: Channel) -> Any:
    return next(c for c in digest.channels if c.channel is channel)


async def test_digest_figures_per_channel(seeded: World) -> None:
    digest = await make_digest(seeded.runtime, DAY, D0 + timedelta(days=6))
    email, whatsapp, web = (_channel(digest, c) for c in Channel)
    assert (email.traffic.messages_in, email.traffic.conversations) == (3, 2)
    assert email.traffic.escalations_by_reason == {"human_request": 1}
    assert email.handed_over == 1
    assert whatsapp.traffic.messages_in == 1  # the re-contacts came on later days
    assert whatsapp.traffic.escalations_by_reason == {"refund": 1}
    assert (web.traffic.messages_in, web.answered, web.handed_over) == (2, 2, 0)
    assert [s.name for s in web.top_sections] == ["Setting up webhooks"]
    assert web.top_sections[0].conversations == 2
    assert "Exporting" in email.top_sections[0].name
    # trend: seven days, the digest's day last; email had traffic the day before too
    assert [p.date for p in email.sentiment_trend][-2:] == [DAY - timedelta(days=1), DAY]
    assert email.sentiment_trend[-2].messages_in == 1
    assert email.sentiment_change is not None
    assert web.traffic.reply_latency_ms_p95 is not None
    assert digest.queue.queued_by_topic is not None
    assert digest.queue.dead_letters == 0


async def test_honest_resolution_beside_the_naive_rate(seeded: World) -> None:
    digest = await make_digest(seeded.runtime, DAY, D0 + timedelta(days=6))
    email, whatsapp, web = (_channel(digest, c).traffic.resolution for c in Channel)
    # email: Ana confirmed, Fay handed over
    assert (email.confirmed, email.handed_over, email.naive_rate, email.honest_rate) == (
        1,
        1,
        0.5,
        0.5,
    )
    # web form: both answered (naive 100 %); Ben came back on WhatsApp at 71 h (against),
    # Cleo at 73 h (outside the window: resolved)
    assert (web.naive_rate, web.recontacted, web.quiet, web.honest_rate) == (1.0, 1, 1, 0.5)
    assert (whatsapp.handed_over, whatsapp.honest_rate) == (1, 0.0)


async def test_answers_inside_the_window_are_pending(seeded: World) -> None:
    # seen the morning after: Ben's and Cleo's customers have not come back yet
    digest = await make_digest(seeded.runtime, DAY, D0 + timedelta(hours=30))
    web = _channel(digest, Channel.WEB_FORM).traffic.resolution
    assert (web.pending, web.honest_rate, web.naive_rate) == (2, None, 1.0)
    email = _channel(digest, Channel.EMAIL).traffic.resolution
    assert (email.confirmed, email.pending, email.honest_rate) == (1, 0, 0.5)


async def test_json_and_html_outputs(seeded: World) -> None:
    digest = await make_digest(seeded.runtime, DAY, D0 + timedelta(days=6))
    body = msgspec.json.decode(encode(digest))
    assert body["date"] == "2026-11-20"
    assert [c["channel"] for c in body["channels"]] == ["email", "whatsapp", "web_form"]
    web = body["channels"][2]["traffic"]
    assert (web["naive_resolution_rate"], web["honest_resolution_rate"]) == (1.0, 0.5)
    page = digest_render.html(digest)
    assert page.count("<svg") == 4
    assert "<script" not in page.lower()
    assert " on" + "load=" not in page.lower()
    assert "honest resolution" in page
    text = digest_render.text(digest)
    assert "web_form:" in text
    assert "honest 50.0%" in text


async def test_stored_once_per_day_even_when_racing(seeded: World) -> None:
    now = D0 + timedelta(days=6)
    made = await asyncio.gather(*(publish_digest(seeded.runtime, DAY, now) for _ in range(3)))
    assert sorted(new for _, new in made) == [False, False, True]
    again, new = await publish_digest(seeded.runtime, DAY, now)
    assert not new
    assert again.id == made[0][0].id
    stored = await seeded.runtime.reports.reports("digest")
    assert [r.title for r in stored] == ["Daily digest 2026-11-20"]
    assert "<svg" in stored[0].html


async def test_the_schedule_makes_yesterdays_digest_once_and_emails_it(seeded: World) -> None:
    clock_now = datetime(2026, 11, 21, 7, tzinfo=UTC)  # after the 06:00 digest hour
    sender = seeded.sender
    sent_before = len(sender.sent)
    for _ in range(2):  # a restart: the second run finds the day's digest stored
        stop = asyncio.Event()
        task = asyncio.create_task(
            digest_schedule(seeded.runtime, stop, sender=sender, clock=lambda: clock_now)
        )
        for _ in range(200):
            if await seeded.runtime.reports.latest_report("digest") is not None:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
    stored = await seeded.runtime.reports.reports("digest")
    assert [r.title for r in stored] == ["Daily digest 2026-11-20"]
    emails = sender.sent[sent_before:]
    assert [(e.target.address, e.target.subject) for e in emails] == [
        ("ops@example.com", "Daily digest 2026-11-20")
    ]
    assert "honest" in emails[0].reply.text


async def test_metrics_endpoint_figures_carry_both_rates(
    pg_pool: AsyncConnectionPool[Any], tmp_path: Path, policy: PolicyEngine
) -> None:
    now = datetime.now(UTC)
    async with world(pg_pool, now - timedelta(hours=10), tmp_path, policy=policy) as w:
        web = {"channel": Channel.WEB_FORM}
        await w.send(
            now - timedelta(hours=10), "How do I export tasks to CSV?", email="a@x.io", **web
        )
        await w.send(now - timedelta(hours=9), "thank you, it works now", email="a@x.io", **web)
        await w.send(
            now - timedelta(hours=5), "How do I export tasks to CSV?", email="b@x.io", **web
        )
        report = await channel_report(w.runtime, timedelta(hours=24))
    figures = next(c for c in report.channels if c.channel is Channel.WEB_FORM)
    assert figures.resolution is not None
    assert (figures.resolution.confirmed, figures.resolution.pending) == (1, 1)
    assert (figures.naive_resolution_rate, figures.honest_resolution_rate) == (1.0, 1.0)


@pytest.mark.slow
async def test_the_command_prints_json_and_stores_a_finished_day(
    seeded: World, pg_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "FTE_DATABASE_URL": pg_url,
        "FTE_DATA_DIR": str(tmp_path / "cli"),
        "FTE_EMBEDDER": "hashing",
    }
    root = ROOT
    runs = []
    for args in (["--date", "2026-11-20", "--format", "json"], ["--date", "2026-11-20"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "digest",
            *args,
            cwd=root,
            env=env,
            stdout=PIPE,
            stderr=PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        runs.append((out.decode(), err.decode()))
    body = json.loads(runs[0][0])
    assert [c["channel"] for c in body["channels"]] == ["email", "whatsapp", "web_form"]
    assert body["channels"][2]["traffic"]["honest_resolution_rate"] == 0.5
    assert "stored as 'Daily digest 2026-11-20'" in runs[0][1]
    assert "already stored" in runs[1][1]
    assert "web_form:" in runs[1][0]
    assert len(await seeded.runtime.reports.reports("digest")) == 1
    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "digest",
        "--date",
        "2026-13-01",
        cwd=root,
        env=env,
        stdout=PIPE,
        stderr=PIPE,
    )
    _, err = await bad.communicate()
    assert bad.returncode == 2
    assert "--date" in err.decode()
