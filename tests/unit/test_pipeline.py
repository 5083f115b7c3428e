"""The agent over the in-memory fakes: every branch of SPEC 4 steps 2-10."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fte_core import events
from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, load_context
from fte_core.errors import InProgress, ResponderError
from fte_core.identity import identifiers_for
from fte_core.models import (
    Channel,
    InboundMessage,
    Passage,
    Priority,
    Ticket,
    TicketStatus,
    Verification,
)
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.ports import Answer, AnswerRequest, Responder, Turn
from fte_core.testing.bus import InMemoryBus, RecordingSender
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.responder import FunctionResponder, ScriptedResponder
from fte_core.testing.store import InMemoryStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def policy() -> PolicyEngine:
    return PolicyEngine(load_rules(ROOT / "rules"))


class SlowIntake(InMemoryStore):
    """The in-memory store, whose intake waits on the loop like a database's round trips
    (the in-memory one finishes before the agent could read anything beside it)."""

    async def open_turn(self, *args: Any, **kwargs: Any) -> Turn:
        for _ in range(5):
            await asyncio.sleep(0)
        return await super().open_turn(*args, **kwargs)


class World:
    def __init__(
        self,
        policy: PolicyEngine,
        responder: Responder,
        kb: InMemoryKnowledgeBase,
        store: InMemoryStore | None = None,
    ):
        self.store = store or InMemoryStore()
        self.bus = InMemoryBus()
        self.sender = RecordingSender()
        self.kb = kb
        self.agent = Agent(
            policy=policy,
            context=load_context(ROOT / "context"),
            store=self.store,
            knowledge=kb,
            responder=responder,
            fallback=OfflineResponder(),
            bus=self.bus,
            sender=self.sender,
        )


@pytest.fixture
async def kb() -> AsyncIterator[InMemoryKnowledgeBase]:
    base = InMemoryKnowledgeBase()
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    await base.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs))
    return base


def message(
    text: str,
    *,
    channel: Channel = Channel.WEB_FORM,
    pid: str = "m1",
    email: str | None = "ana@example.com",
    phone: str | None = None,
    subject: str | None = None,
    verified_by: Verification | None = None,
    ticket_access: str | None = None,
) -> InboundMessage:
    """As the channels send it: email and WhatsApp addresses proven by the provider, the
    web form's claimed."""
    proven = {
        Channel.EMAIL: Verification.EMAIL_AUTH,
        Channel.WHATSAPP: Verification.PROVIDER_SIGNED,
    }
    return InboundMessage(
        channel=channel,
        provider_message_id=pid,
        text=text,
        received_at=datetime.now(UTC),
        sender_email=email,
        sender_phone=phone,
        sender_name="Ana Ruiz",
        subject=subject,
        verified_by=verified_by or proven.get(channel),
        ticket_access=ticket_access,
    )


def cite_first(text: str) -> FunctionResponder:
    def answer(request: AnswerRequest) -> Answer:
        return Answer(text=text, passage_ids=(request.passages[0].id,), responder="test-model")

    return FunctionResponder(answer)


async def test_answers_from_the_knowledge_base_and_cites(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(
        message("How do I reset my password? I forgot it.", subject="Password reset")
    )
    assert outcome.record.action == "answer"
    assert outcome.record.passage_ids
    assert outcome.ticket.number in outcome.reply.text
    assert outcome.record.input_decision.action == "allow"
    assert outcome.record.output_decision is not None
    assert outcome.record.output_decision.action == "allow"
    ticket = await world.store.get_ticket(outcome.ticket.number)
    assert ticket is not None
    assert ticket.status == TicketStatus.PENDING
    assert [s.reply for s in world.sender.sent] == [outcome.reply]
    assert len(world.bus.on(events.METRICS)) == 1
    assert set(outcome.record.latency_ms) >= {"intake", "input_rules", "retrieve", "answer"}


async def test_with_an_outbox_bus_the_metrics_ride_with_the_reply(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    """The bus reads the store's outbox: the reply's metrics event is queued by the store
    with the reply (one commit), not published on its own, and reaches the bus once."""
    world = World(policy, OfflineResponder(), kb)
    world.store.on_announce = world.bus.publish
    world.agent.config = dataclasses.replace(world.agent.config, events_with_replies=True)
    outcome = await world.agent.handle(message("How do I reset my password?"))
    assert outcome.record.action == "answer"
    assert [topic for topic, _, _ in world.store.outbox] == [events.METRICS]
    published = world.bus.on(events.METRICS)
    assert len(published) == 1
    again = await world.agent.handle(message("How do I reset my password?"))  # redelivered
    assert again.outbound_id == outcome.outbound_id
    assert len(world.bus.on(events.METRICS)) == 1


async def test_input_escalation_skips_the_model(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    responder = ScriptedResponder("should never be used")
    world = World(policy, responder, kb)
    outcome = await world.agent.handle(
        message(
            "pls i want a refund for last month",
            channel=Channel.WHATSAPP,
            email=None,
            phone="+14155550101",
        )
    )
    assert responder.requests == []
    assert outcome.record.action == "escalate"
    assert outcome.record.escalation_reason == "refund"
    assert "refund" in outcome.record.input_decision.reasons
    ticket = await world.store.get_ticket(outcome.ticket.number)
    assert ticket is not None
    assert ticket.status == TicketStatus.ESCALATED
    assert ticket.escalation_reason == "refund"
    (event,) = world.bus.on(events.ESCALATIONS)
    assert isinstance(event, events.EscalationEvent)
    assert event.reason == "refund"
    assert outcome.ticket.number in outcome.reply.text
    assert all(len(part) <= 1600 for part in outcome.reply.parts)


async def test_output_rules_replace_a_draft_quoting_a_price(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, cite_first("Good news: the Team plan is $12 per seat."), kb)
    outcome = await world.agent.handle(message("How do I invite members to my workspace?"))
    assert outcome.record.action == "escalate"
    assert outcome.record.output_decision is not None
    assert "pricing_disclosure" in outcome.record.output_decision.reasons
    assert outcome.record.blocked_draft == "Good news: the Team plan is $12 per seat."
    assert "$12" not in outcome.reply.text
    assert world.sender.sent[0].reply == outcome.reply


async def test_an_answer_citing_nothing_is_ungrounded(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    responder = FunctionResponder(
        lambda request: Answer(text="Try turning it off and on.", passage_ids=(), responder="m")
    )
    world = World(policy, responder, kb)
    outcome = await world.agent.handle(message("How do I invite members to my workspace?"))
    assert outcome.record.escalation_reason == "ungrounded"


async def test_no_knowledge_base_match_after_two_attempts_escalates(
    policy: PolicyEngine,
) -> None:
    world = World(policy, OfflineResponder(), InMemoryKnowledgeBase())
    outcome = await world.agent.handle(message("Does the app support my favourite thing?"))
    assert outcome.record.escalation_reason == "no_kb_match"
    assert outcome.record.search_attempts == 2


async def test_a_failing_model_falls_back_to_the_offline_responder(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, ScriptedResponder(ResponderError("provider down")), kb)
    outcome = await world.agent.handle(message("How do I reset my password?"))
    assert outcome.record.action == "answer"
    assert outcome.record.responder == "offline"
    assert outcome.record.fallback is not None


async def test_redelivery_does_not_answer_twice(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    first = await world.agent.handle(message("How do I reset my password?", pid="dup"))
    second = await world.agent.handle(message("How do I reset my password?", pid="dup"))
    assert second.outbound_id == first.outbound_id
    assert second.reply == first.reply
    assert len(world.sender.sent) == 1


class CountingKnowledge(InMemoryKnowledgeBase):
    """The fake knowledge base, counting what the agent asks of it."""

    embedded = 0
    searched = 0

    async def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        self.embedded += 1
        return await super().embed_queries(queries)

    async def search(
        self, query: str, limit: int = 5, *, embedding: Sequence[float] | None = None
    ) -> list[Passage]:
        self.searched += 1
        return await super().search(query, limit, embedding=embedding)


@pytest.fixture
async def counting() -> CountingKnowledge:
    base = CountingKnowledge()
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    await base.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs))
    return base


async def test_a_redelivered_answered_message_is_replayed_without_reading_it(
    policy: PolicyEngine, counting: CountingKnowledge
) -> None:
    world = World(policy, OfflineResponder(), counting)
    first = await world.agent.handle(message("How do I export my tasks to CSV?", pid="r1"))
    read = (counting.embedded, counting.searched)
    again = await world.agent.handle(message("How do I export my tasks to CSV?", pid="r1"))
    assert again.outbound_id == first.outbound_id
    assert (counting.embedded, counting.searched) == read == (1, 1)


async def test_a_message_another_worker_holds_is_read_once_not_on_every_poll(
    policy: PolicyEngine, counting: CountingKnowledge
) -> None:
    """A worker polls every half second while its peer holds a message: the first try
    reads it beside the intake (the intake's round trips have not answered yet), the
    later tries take it in first."""
    world = World(policy, OfflineResponder(), counting, SlowIntake())
    held = message("How do I export my tasks to CSV?", pid="h1")
    now = datetime.now(UTC)
    await world.store.open_turn(  # another worker took it in and holds it
        held,
        identifiers_for(held),
        held.sender_name,
        now,
        timedelta(hours=24),
        claim=timedelta(minutes=2),
    )
    for _ in range(3):
        with pytest.raises(InProgress):
            await world.agent.handle(held)
    assert counting.embedded == 1
    world.agent.clock = lambda: now + timedelta(minutes=3)  # the peer's lease ran out
    outcome = await world.agent.handle(held)
    assert outcome.record.action == "answer"
    assert counting.embedded == 2


async def test_same_customer_across_channels_shares_one_ticket(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    web = await world.agent.handle(message("How do I reset my password?", pid="w1"))
    mail = await world.agent.handle(
        message(
            "And how do I enable two-factor authentication?",
            pid="e1",
            channel=Channel.EMAIL,
            email="ANA@example.com",
            subject="2FA",
        )
    )
    assert mail.customer.id == web.customer.id
    assert mail.ticket.number == web.ticket.number
    history = await world.store.customer_history(web.customer.id)
    assert [h.channel for h in history].count(Channel.EMAIL) == 2  # question + reply


async def test_decision_record_is_explainable(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    from fte_core.tools import explain_decision

    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(message("I need a refund, and the app is broken"))
    explanation = await explain_decision(world.store, outcome.inbound_id)
    assert explanation.record == outcome.record
    assert "refund" in explanation.summary
    assert explanation.ticket_number == outcome.ticket.number


async def test_a_failed_delivery_is_retried_on_redelivery_not_recomposed(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    from fte_core.errors import DeliveryError
    from fte_core.models import DeliveryStatus

    world = World(policy, OfflineResponder(), kb)
    world.sender.fail_next = 1
    with pytest.raises(DeliveryError):
        await world.agent.handle(message("How do I reset my password?", pid="flaky"))
    assert world.sender.sent == []
    outcome = await world.agent.handle(message("How do I reset my password?", pid="flaky"))
    assert [s.reply for s in world.sender.sent] == [outcome.reply]
    stored = await world.store.get_message(outcome.outbound_id)
    assert stored is not None
    assert stored.delivery_status == DeliveryStatus.SENT
    assert len(await world.store.conversation_messages(outcome.conversation.id)) == 2


async def test_a_message_stored_before_a_crash_is_answered_once_in_its_thread(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    from datetime import timedelta

    from fte_core.identity import identifiers_for

    world = World(policy, OfflineResponder(), kb)
    msg = message("How do I reset my password?", pid="crashed")
    res = await world.store.resolve_customer(identifiers_for(msg), msg.sender_name)
    thread = await world.store.thread(
        res.customer.id, msg.channel, datetime.now(UTC), timedelta(hours=24)
    )
    stored, _ = await world.store.save_inbound(msg, res.customer.id, thread.conversation.id)
    outcome = await world.agent.handle(msg)
    again = await world.agent.handle(msg)
    assert outcome.inbound_id == stored.id
    assert outcome.conversation.id == thread.conversation.id
    assert again.outbound_id == outcome.outbound_id
    assert len(world.sender.sent) == 1


async def test_the_outcome_reports_the_ticket_as_stored(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(
        message("This is the third time I ask: how do I reset my password?", pid="t3")
    )
    stored = await world.store.get_ticket(outcome.ticket.number)
    assert outcome.ticket == stored
    assert outcome.record.reasons == ()
    escalated = await world.agent.handle(message("I want a refund and my lawyer agrees", pid="t4"))
    assert escalated.record.reasons[0] == escalated.record.escalation_reason
    assert set(escalated.record.reasons) >= {"legal", "refund"}


async def test_a_message_with_two_questions_gets_both_answered(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(
        message(
            "How do I export my project to a CSV file? "
            "Also, how do I connect Slack to post project updates in a channel?"
        )
    )
    assert outcome.record.action == "answer"
    sections = {p.split("/")[1] for p in outcome.record.passage_ids}
    assert {"exporting-data-to-csv-or-json", "connecting-slack"} <= sections
    assert outcome.ticket.status == TicketStatus.PENDING


async def test_a_question_the_docs_do_not_answer_is_handed_over_beside_the_answer(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(
        message("How do I connect Slack to a project? And what is the capital of Mongolia?")
    )
    assert outcome.record.action == "answer"
    assert "connecting-slack" in {p.split("/")[1] for p in outcome.record.passage_ids}
    assert "member of our team" in outcome.reply.text
    assert outcome.ticket.status == TicketStatus.ESCALATED
    assert outcome.ticket.escalation_reason == "no_kb_match"
    assert len(world.bus.on(events.ESCALATIONS)) == 1


async def test_a_thank_you_after_an_answer_gets_a_short_acknowledgement_not_a_passage(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    first = await world.agent.handle(
        message("How do I reset my password?", pid="m1", channel=Channel.EMAIL)
    )
    thanks = await world.agent.handle(
        message("thanks, that worked!", pid="m2", channel=Channel.EMAIL)
    )
    assert thanks.record.action == "answer"
    assert thanks.record.passage_ids == ()
    assert thanks.record.responder == ""
    assert "glad" in thanks.reply.text.lower()
    assert "Forgot password" not in thanks.reply.text
    assert thanks.ticket.number == first.ticket.number
    assert thanks.ticket.status == TicketStatus.PENDING


async def test_thanks_with_a_new_problem_is_not_taken_for_a_closing(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    outcome = await world.agent.handle(
        message("Thanks, but I still need to reset my password, I forgot it", pid="m3")
    )
    assert outcome.record.action == "answer"
    assert "resetting-your-password" in {p.split("/")[1] for p in outcome.record.passage_ids}


@pytest.mark.parametrize(
    ("profile", "company", "signature"),
    [
        (None, "Tasklane Inc.", "Tasklane Support"),
        ("# Acme GmbH company profile\n\nWe make anvils.", "Acme GmbH", "Acme Support"),
        ("", "", "Customer Support"),
    ],
)
async def test_replies_are_signed_by_the_company_of_the_context(
    policy: PolicyEngine,
    kb: InMemoryKnowledgeBase,
    profile: str | None,
    company: str,
    signature: str,
) -> None:
    """Nothing in the core names a company: the dossier's profile does (the model is told
    whom it speaks for, the email closing and the hand-over wording sign with it)."""
    context = load_context(ROOT / "context")
    if profile is not None:
        context = msgspec.structs.replace(context, company_profile=profile)
    responder = cite_first("Open Settings, then Security, and choose Reset password.")
    world = World(policy, responder, kb)
    world.agent.context = context
    answered = await world.agent.handle(
        message("How do I reset my password?", channel=Channel.EMAIL, pid="a1")
    )
    assert responder.requests[0].company == company
    assert answered.reply.text.endswith(f"{signature}\nTicket {answered.ticket.number}")
    handed = await world.agent.handle(
        message("my lawyer will sue you", channel=Channel.EMAIL, pid="a2", email="b@x.org")
    )
    assert handed.record.action == "escalate"
    assert f"Thank you for contacting {signature}." in handed.reply.text


async def test_with_an_outbox_bus_the_escalation_event_rides_with_the_hand_over(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    world = World(policy, OfflineResponder(), kb)
    world.store.on_announce = world.bus.publish
    world.agent.config = dataclasses.replace(world.agent.config, events_with_replies=True)
    outcome = await world.agent.handle(
        message("I want a refund now or I will call my lawyer and sue you.")
    )
    assert outcome.record.action == "escalate"
    assert [topic for topic, _, _ in world.store.outbox] == [events.ESCALATIONS, events.METRICS]
    (escalation,) = world.bus.on(events.ESCALATIONS)
    assert isinstance(escalation, events.EscalationEvent)
    assert escalation.ticket_number == outcome.ticket.number
    assert len(world.bus.on(events.METRICS)) == 1


async def test_the_rules_ticket_changes_are_stored_with_the_reply(
    policy: PolicyEngine, kb: InMemoryKnowledgeBase
) -> None:
    """Tags and a raised priority of an answered message need no write of their own."""
    world = World(policy, OfflineResponder(), kb)
    updates: list[str] = []
    update_ticket = world.store.update_ticket

    async def counted(number: str, **changes: Any) -> Ticket:
        updates.append(number)
        return await update_ticket(number, **changes)

    world.store.update_ticket = counted  # type: ignore[method-assign]
    outcome = await world.agent.handle(
        message("I am so unhappy, this is frustrating. How do I export tasks to CSV on the iPhone?")
    )
    assert outcome.record.action == "answer"
    assert "mobile" in outcome.ticket.tags
    assert outcome.ticket.priority.rank >= Priority.HIGH.rank
    assert outcome.ticket == await world.store.get_ticket(outcome.ticket.number)
    assert updates == []
