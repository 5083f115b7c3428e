"""The input rules read the whole message: whatever an email's signature, a quote header
or ">" lines hide from the model, an escalating tail there still escalates."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, load_context
from fte_core.models import Channel, InboundMessage, Verification
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.testing import InMemoryBus, InMemoryKnowledgeBase, InMemoryStore

ROOT = Path(__file__).resolve().parents[2]
TAILS = (
    "My attorney will sue you",
    "I want my money back",
    "I want to talk to a human",
    "someone hacked my account",
    "how much does the business plan cost",
)
SEPARATORS = (
    "\n-- \n",
    "\n--\n",
    "\nOn Monday my lawyer wrote:\n> ",
    "\nOn Tue, 3 Mar 2026 at 10:00, Support <support@example.com> wrote:\n> ",
    "\n-----Original Message-----\n",
    "\nSent from my iPhone\n",
    "\n> ",
)
BODIES = st.one_of(
    st.sampled_from(
        (
            "How do I export a board?",
            "Thanks, that worked!",
            "Hello,\n\nhow do I add a custom field?\n\nKind regards,\nAna",
            "",
        )
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200),
)
_ids = itertools.count()


@pytest.fixture(scope="module")
def agent() -> Agent:
    kb = InMemoryKnowledgeBase()
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    asyncio.run(kb.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs)))
    return Agent(
        policy=PolicyEngine(load_rules(ROOT / "rules")),
        context=load_context(ROOT / "context"),
        store=InMemoryStore(),
        knowledge=kb,
        responder=OfflineResponder(),
        bus=InMemoryBus(),
    )


@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES, separator=st.sampled_from(SEPARATORS), tail=st.sampled_from(TAILS))
async def test_an_escalating_tail_escalates_whatever_hides_it(
    agent: Agent, body: str, separator: str, tail: str
) -> None:
    alone = agent.policy.evaluate("input", tail, Channel.EMAIL)
    assert alone.action == "escalate"
    outcome = await agent.handle(
        InboundMessage(
            channel=Channel.EMAIL,
            provider_message_id=f"p-{next(_ids)}",
            text=body + separator + tail,
            received_at=datetime.now(UTC),
            sender_email=f"p{next(_ids)}@example.com",
            verified_by=Verification.EMAIL_AUTH,
        )
    )
    assert outcome.record.action == "escalate"
    assert set(alone.reasons) <= set(outcome.record.input_decision.reasons)
