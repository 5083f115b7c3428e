"""Defence in depth through the pipeline: durable_rules and the reference evaluator judge
every message; when they disagree (forced here with a fake reference that forgets a rule),
the message escalates with `policy_error`, the disagreement is counted where the service's
metric reads it, and the log carries both decisions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fte_core.context import load_context
from fte_core.models import Channel, InboundMessage, Verification
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.testing import InMemoryBus, InMemoryKnowledgeBase, InMemoryStore, SkewedReference
from fte_core.testing.monitoring import MemoryOperations

ROOT = Path(__file__).resolve().parents[2]


def _message(n: int, text: str) -> InboundMessage:
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id=f"defence-{n}",
        text=text,
        received_at=datetime.now(UTC),
        sender_phone=f"+4915100000{n:02d}",
        verified_by=Verification.PROVIDER_SIGNED,
    )


async def test_a_disagreement_escalates_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reference = SkewedReference(forget="human-words")
    policy = PolicyEngine(load_rules(ROOT / "rules"), reference=reference)
    store = InMemoryStore()
    agent = Agent(
        policy=policy,
        context=load_context(ROOT / "context"),
        store=store,
        knowledge=InMemoryKnowledgeBase(),
        responder=OfflineResponder(),
        bus=InMemoryBus(),
    )
    try:
        with caplog.at_level(logging.ERROR, logger="fte_core.policy.engine"):
            outcome = await agent.handle(_message(1, "can i talk to a human please"))
            calm = await agent.handle(_message(2, "thanks, that worked"))
    finally:
        policy.close()
    decision = outcome.record.input_decision
    assert reference.calls >= 2  # it judged every message, not only the first
    assert outcome.record.action == "escalate"
    assert decision.reasons[0] == "policy_error"
    assert "human-words" in decision.rule_ids  # what either evaluator fired is kept
    assert decision.error is not None
    assert "human-words" in decision.error.split("reference fired")[0]
    assert "human-words" not in decision.error.split("reference fired")[1]
    assert calm.record.input_decision.error is None  # agreeing evaluators: no error
    assert policy.disagreements == 1
    logged = [r.getMessage() for r in caplog.records if "disagree" in r.getMessage()]
    assert len(logged) == 1
    assert "durable_rules fired [" in logged[0]
    assert "reference fired [" in logged[0]
    snapshot = await MemoryOperations(store).snapshot(datetime.now(UTC), timedelta(hours=1))
    assert (snapshot.disagreements, snapshot.recent_disagreements) == (1, 1)
