"""The learning report on seeded traffic over PostgreSQL: tickets people resolved that the
agent could not answer, grouped by meaning with the real MiniLM embedder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from fte_core.models import Channel, TicketStatus
from fte_core.policy import PolicyEngine
from service import learning
from service.cli_reports import learn_report
from tests.integration.report_world import World, shared_policy, world

if TYPE_CHECKING:
    from adapters.embedding.minilm import MiniLMEmbedder

pytestmark = pytest.mark.postgres

START = datetime(2026, 11, 1, 9, tzinfo=UTC)

SALESFORCE = (
    "How do I connect Tasklane to Salesforce?",
    "Is there a Salesforce integration for syncing our deals?",
    "can tasklane sync tasks with our salesforce crm",
)
DARK = ("Is there a dark mode?", "How can I switch the app to a dark theme at night?")


@pytest.fixture(scope="module")
def policy() -> Iterator[PolicyEngine]:
    engine = shared_policy()
    yield engine
    engine.close()


async def _handled_by_a_person(
    w: World, hours: float, text: str, answer: str, *, resolve: bool = True, **sender: Any
) -> str:
    outcome = await w.send(START + timedelta(hours=hours), text, **sender)
    number = outcome.ticket.number
    w.clock.now = START + timedelta(hours=hours, minutes=30)
    await w.runtime.store.save_human_reply(number, answer, "Olga")
    if resolve:
        await w.runtime.store.update_ticket(number, status=TicketStatus.RESOLVED)
    return number


async def _seed(w: World) -> None:
    channels = (
        {"email": "a@example.com"},
        {"channel": Channel.WHATSAPP, "phone": "+15550100010"},
        {"channel": Channel.WEB_FORM, "email": "c@example.com"},
    )
    for i, (text, who) in enumerate(zip(SALESFORCE, channels, strict=True)):
        await _handled_by_a_person(
            w, i, text, f"There is no Salesforce connector yet; use the Zapier app ({i}).", **who
        )
    for i, text in enumerate(DARK):
        await _handled_by_a_person(
            w, 5 + i, text, "Dark mode: Profile > Appearance > Dark.", email=f"d{i}@example.com"
        )
    # a refund: handed over by rule, no article would let the agent answer it
    await _handled_by_a_person(
        w, 8, "i want a refund for last month", "Refunded.", email="r@example.com"
    )
    # answered by a person, but not resolved yet
    await _handled_by_a_person(
        w,
        9,
        "How do I connect Tasklane to HubSpot?",
        "Looking into it.",
        resolve=False,
        email="h@example.com",
    )


def _embed(model: MiniLMEmbedder) -> learning.Embed:
    async def embed(texts: Sequence[str]) -> list[list[float]]:
        return await model.embed(texts)

    return embed


async def test_groups_by_meaning_with_examples_answers_and_a_title(
    pg_pool: AsyncConnectionPool[Any],
    tmp_path: Path,
    policy: PolicyEngine,
    minilm: MiniLMEmbedder,
) -> None:
    async with world(pg_pool, START, tmp_path, knowledge=False, policy=policy) as w:
        await _seed(w)
        now = START + timedelta(days=2)
        report = await learning.build_report(
            w.runtime.store, w.runtime.knowledge, _embed(minilm), now - timedelta(days=30), now
        )
    assert report.tickets == 5  # the refund and the unresolved ticket are left out
    assert [g.size for g in report.groups] == [3, 2]
    salesforce, dark = report.groups
    assert sorted(salesforce.examples) == sorted(SALESFORCE)
    assert "Salesforce" in salesforce.suggested_title
    assert salesforce.reasons == {"no_kb_match": 3}
    assert len(salesforce.answers) == 3
    assert all("Zapier" in a for a in salesforce.answers)
    assert sorted(dark.examples) == sorted(DARK)
    assert "dark" in dark.suggested_title.lower()
    assert dark.answers == ("Dark mode: Profile > Appearance > Dark.",)


async def test_period_and_storage(
    pg_pool: AsyncConnectionPool[Any], tmp_path: Path, policy: PolicyEngine
) -> None:
    """Through `fte learn`'s path: the period counts back from now, the report is stored,
    and a knowledge base without vectors falls back to the configured embedder (hashing)."""
    async with world(pg_pool, START, tmp_path, knowledge=False, policy=policy) as w:
        await _seed(w)
        resolved_ago = datetime.now(UTC) - START
        recent = await learn_report(w.runtime, resolved_ago - timedelta(days=1), 0.45)
        report = await learn_report(w.runtime, resolved_ago + timedelta(days=1), 0.45)
        stored = await w.runtime.reports.reports("learning")
    assert (recent.tickets, recent.groups) == (0, ())
    assert report.tickets == 5
    assert sum(g.size for g in report.groups) == 5
    assert [msgspec.json.decode(r.body)["tickets"] for r in stored] == [5, 0]
    assert "<svg" in stored[0].html
    assert "<script" not in stored[0].html
    text = learning.text(report)
    assert text.count("asked: ") == 5


def test_since_is_validated() -> None:
    assert learning.parse_since("30d") == timedelta(days=30)
    assert learning.parse_since("12h") == timedelta(hours=12)
    from fte_core.errors import ValidationError

    for bad in ("30", "d", "-3d", "3w", "0d"):
        with pytest.raises(ValidationError, match="--since"):
            learning.parse_since(bad)
