"""A service runtime over the test PostgreSQL with a clock the test moves, and a helper
that sends customer messages through the real agent at given times (seeded data for the
digest, the resolution rate and the learning report)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.report_queries import PostgresReportQueries
from adapters.storage.postgres.reports import PostgresReports
from adapters.storage.postgres.store import PostgresStore
from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, load_context
from fte_core.models import Channel, InboundMessage, Outcome, Verification
from fte_core.offline import OfflineResponder
from fte_core.policy import PolicyEngine, load_rules
from fte_core.testing.bus import InMemoryBus, RecordingSender
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from service.bootstrap import Runtime, bootstrap
from service.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, runtime: Runtime, clock: Clock, sender: RecordingSender) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sender = sender
        self._ids = 0

    async def send(
        self,
        at: datetime,
        text: str,
        *,
        channel: Channel = Channel.EMAIL,
        email: str | None = None,
        phone: str | None = None,
    ) -> Outcome:
        """One customer message received at `at`, answered (stored) two seconds later."""
        self._ids += 1
        self.clock.now = at + timedelta(seconds=2)
        message = InboundMessage(
            channel=channel,
            provider_message_id=f"seed-{self._ids}",
            text=text,
            received_at=at,
            sender_email=email,
            sender_phone=phone,
            sender_name="Sam Seed",
            subject="Question" if channel is not Channel.WHATSAPP else None,
            verified_by=Verification.PROVIDER_SIGNED if channel is not Channel.WEB_FORM else None,
        )
        return await self.runtime.agent.handle(message)


@asynccontextmanager
async def world(
    pool: AsyncConnectionPool[Any],
    start: datetime,
    tmp: Path,
    *,
    knowledge: bool = True,
    policy: PolicyEngine | None = None,
) -> AsyncIterator[World]:
    """`knowledge=False`: an empty knowledge base, so every question is a no-match."""
    clock = Clock(start)
    kb = InMemoryKnowledgeBase()
    if knowledge:
        docs = load_context(ROOT / "context").product_docs
        await kb.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs))
    sender = RecordingSender()
    settings = load_settings(
        {
            "FTE_STORAGE": "memory",
            "FTE_DATA_DIR": str(tmp),
            "FTE_EMBEDDER": "hashing",
            "FTE_RULES_DIR": str(ROOT / "rules"),
            "FTE_CONTEXT_DIR": str(ROOT / "context"),
            "FTE_DIGEST_EMAIL": "ops@example.com",
        }
    )
    runtime = await bootstrap(
        settings,
        store=PostgresStore(pool, clock=clock),
        knowledge=kb,
        responder=OfflineResponder(),
        bus=InMemoryBus(),
        sender=sender,
        ingest=False,
        reports=PostgresReports(pool),
        policy=policy,
        queries=PostgresReportQueries(pool),
    )
    runtime.agent.clock = clock
    try:
        yield World(runtime, clock, sender)
    finally:
        await runtime.aclose()


def shared_policy() -> PolicyEngine:
    """The shipped rules, compiled once per test module (a module-scoped fixture)."""
    return PolicyEngine(load_rules(ROOT / "rules"))
