"""The real agent behind `fte worker` processes: messages queued at intake, a worker
SIGKILLed mid-stream, a new one started: every message answered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core.models import Channel, InboundMessage, Verification
from service.bootstrap import bootstrap
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]
CUSTOMERS, EACH = 60, 5
TOTAL = CUSTOMERS * EACH
QUESTIONS = (
    "how do I reset my password?",
    "how do I invite a guest?",
    "how do I export tasks to CSV?",
    "how do I set up a recurring task?",
    "how do I connect Slack?",
)


def worker(url: str, data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    env.update(FTE_DATABASE_URL=url, FTE_DATA_DIR=str(data_dir), FTE_WORKER_CONCURRENCY="16")
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def replies(pool: AsyncConnectionPool[Any]) -> tuple[int, int]:
    """(inbound messages with a reply, the largest number of agent replies to one)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            """SELECT count(*), coalesce(max(n), 0) FROM (
                   SELECT count(*) AS n FROM messages
                   WHERE direction = 'outbound' AND author = 'agent' GROUP BY in_reply_to) r"""
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_a_killed_worker_loses_and_duplicates_nothing(
    pg_url: str, pg_pool: AsyncConnectionPool[Any], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=pg_url,
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
    )
    runtime = await bootstrap(settings)
    try:
        for turn in range(EACH):
            await asyncio.gather(
                *(
                    runtime.agent.submit(
                        InboundMessage(
                            channel=Channel.WHATSAPP,
                            provider_message_id=f"wa-{c}-{turn}",
                            text=QUESTIONS[turn],
                            received_at=datetime.now(UTC),
                            sender_phone=f"+1415555{c:04d}",
                            verified_by=Verification.PROVIDER_SIGNED,
                        )
                    )
                    for c in range(CUSTOMERS)
                )
            )
    finally:
        await runtime.aclose()
    first = worker(pg_url, tmp_path)
    deadline = time.monotonic() + 120
    while (await replies(pg_pool))[0] < TOTAL // 4 and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()[1][-2000:]
        await asyncio.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    answered_at_kill = (await replies(pg_pool))[0]
    assert 0 < answered_at_kill < TOTAL
    second = worker(pg_url, tmp_path)
    try:
        deadline = time.monotonic() + 180
        while (await replies(pg_pool))[0] < TOTAL and time.monotonic() < deadline:
            assert second.poll() is None, second.communicate()[1][-2000:]
            await asyncio.sleep(0.25)
        answered, most = await replies(pg_pool)
        assert (answered, most) == (TOTAL, 1)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err[-2000:]
    async with pg_pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM messages WHERE direction = 'inbound' AND processed_at IS NULL"
        )
        row = await cursor.fetchone()
        dead = await (await conn.execute("SELECT count(*) FROM dead_letters")).fetchone()
    assert row is not None
    assert row[0] == 0
    assert dead is not None
    assert dead[0] == 0
