"""Whole conversations over both stores (in-memory and PostgreSQL): hand-over and hold,
operators' reply/release/resolve, rules on the whole email, what a sender may see, and
quoted ticket numbers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fte_core import events, operators
from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, load_context
from fte_core.errors import InProgress, NotFound
from fte_core.models import (
    Author,
    Channel,
    InboundMessage,
    Outcome,
    Owner,
    Priority,
    TicketStatus,
    Verification,
)
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent
from fte_core.policy import PolicyEngine, load_rules
from fte_core.ports import Answer, AnswerRequest, CrmStore
from fte_core.testing import FunctionResponder, InMemoryBus, InMemoryKnowledgeBase, RecordingSender

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROVEN = {Channel.EMAIL: Verification.EMAIL_AUTH, Channel.WHATSAPP: Verification.PROVIDER_SIGNED}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class World:
    """An agent over the parametrised store; its responder records what the model saw."""

    def __init__(self, store: CrmStore, policy: PolicyEngine, kb: InMemoryKnowledgeBase):
        self.store = store
        self.sender = RecordingSender()
        self.clock = Clock()
        self.requests: list[AnswerRequest] = []
        offline = OfflineResponder()

        async def answer(request: AnswerRequest) -> Answer:
            self.requests.append(request)
            return await offline.answer(request)

        self.agent = Agent(
            policy=policy,
            context=load_context(ROOT / "context"),
            store=store,
            knowledge=kb,
            responder=FunctionResponder(answer, name="recording"),
            bus=InMemoryBus(),
            sender=self.sender,
            clock=self.clock,
        )
        self.sequence = 0

    async def say(
        self,
        text: str,
        *,
        channel: Channel = Channel.WHATSAPP,
        email: str | None = None,
        phone: str | None = "+14155550101",
        subject: str | None = None,
        proven: bool = True,
        pid: str | None = None,
        after: timedelta = timedelta(minutes=5),
    ) -> Outcome:
        self.clock.now += after
        self.sequence += 1
        return await self.agent.handle(
            InboundMessage(
                channel=channel,
                provider_message_id=pid or f"m-{self.sequence}",
                text=text,
                received_at=self.clock.now,
                sender_email=email,
                sender_phone=phone if channel is Channel.WHATSAPP or email is None else None,
                subject=subject,
                verified_by=PROVEN.get(channel) if proven else None,
            )
        )


@pytest.fixture(scope="module")
def policy() -> PolicyEngine:
    return PolicyEngine(load_rules(ROOT / "rules"))


@pytest.fixture
async def world(store: CrmStore, policy: PolicyEngine) -> World:
    kb = InMemoryKnowledgeBase()
    docs = (ROOT / "context" / "product-docs.md").read_text(encoding="utf-8")
    await kb.ingest(KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, docs))
    return World(store, policy, kb)


HOW_TO = "how do I reset my password?"


async def test_after_a_hand_over_the_agent_holds_and_acknowledges_once_per_period(
    world: World,
) -> None:
    handed = await world.say("I want to talk to a human")
    assert handed.record.action == "escalate"
    assert handed.ticket.owner is Owner.HUMAN
    held = await world.say(HOW_TO)
    assert held.ticket.number == handed.ticket.number
    assert held.record.action == "hold"
    assert held.reply.parts == ()  # the hand-over message was this period's acknowledgement
    assert held.outbound_id is None
    assert world.requests == []  # the model never saw it
    later = await world.say("hello? still waiting", after=timedelta(hours=5))
    assert later.record.action == "hold"
    assert len(later.reply.parts) == 1
    assert "specialist has your case" in later.reply.parts[0]
    assert handed.ticket.number in later.reply.parts[0]
    again = await world.say("any news?")
    assert (again.record.action, again.reply.parts) == ("hold", ())
    messages = await world.store.conversation_messages(handed.conversation.id)
    authors = [m.author for m in messages]  # the hand-over and one acknowledgement
    assert (authors.count(Author.CUSTOMER), authors.count(Author.AGENT)) == (4, 2)


async def test_rules_still_run_while_held_and_raise_the_urgency(world: World) -> None:
    handed = await world.say("can I talk to a real person please")
    threat = await world.say("if nobody answers today my lawyer will sue you")
    assert threat.record.action == "hold"
    assert "legal" in threat.record.reasons
    ticket = await world.store.get_ticket(handed.ticket.number)
    assert ticket is not None
    assert ticket.urgency is not None
    assert ticket.urgency.rank >= Priority.HIGH.rank
    assert ticket.escalation_reason == "human_request"  # the first reason stays


async def test_a_held_redelivery_decides_nothing_twice(world: World) -> None:
    await world.say("I want to talk to a human")
    first = await world.say(HOW_TO, pid="dup-1")
    second = await world.say(HOW_TO, pid="dup-1")
    assert second.record == first.record
    assert second.inbound_id == first.inbound_id
    messages = await world.store.conversation_messages(first.conversation.id)
    assert len(messages) == 3


async def test_operator_replies_as_a_human_then_releases_and_the_agent_answers(
    world: World,
) -> None:
    handed = await world.say("I want to talk to a human")
    sent_before = len(world.sender.sent)
    reply = await operators.reply_as_human(
        world.store,
        handed.ticket.number,
        "Hi, Sam here. What can I do?",
        "Sam",
        sender=world.sender,
    )
    assert (reply.author, reply.author_name) == (Author.HUMAN, "Sam")
    assert len(world.sender.sent) == sent_before + 1
    sent = world.sender.sent[-1]
    assert sent.reply.parts == ("Hi, Sam here. What can I do?",)
    assert (sent.target.channel, sent.target.address) == (Channel.WHATSAPP, "+14155550101")
    ticket = await world.store.get_ticket(handed.ticket.number)
    assert ticket is not None
    assert (ticket.status, ticket.owner, ticket.assignee) == (
        TicketStatus.PENDING,
        Owner.HUMAN,
        "Sam",
    )
    held = await world.say(HOW_TO)  # the customer answers the person: still theirs
    assert held.record.action == "hold"
    released = await operators.release(world.store, handed.ticket.number, "Sam")
    assert released.owner is Owner.BOT
    answered = await world.say("and how do I turn on two-factor authentication?")
    assert answered.record.action == "answer"
    assert answered.ticket.number == handed.ticket.number
    # the model saw the person's reply as the human's, in order
    authors = [h.author for h in world.requests[-1].history]
    assert Author.HUMAN in authors


async def test_resolve_hands_back_to_the_agent(world: World) -> None:
    handed = await world.say("I want to talk to a human")
    resolved = await operators.resolve(world.store, handed.ticket.number, "Sam")
    assert (resolved.status, resolved.owner) == (TicketStatus.RESOLVED, Owner.BOT)
    follow_up = await world.say(HOW_TO)
    assert follow_up.record.action == "answer"
    assert follow_up.ticket.status is TicketStatus.PENDING


async def test_a_threat_after_the_signature_still_escalates(world: World) -> None:
    outcome = await world.say(
        "How do I export a board?\n-- \nMy attorney will sue you",
        channel=Channel.EMAIL,
        email="lee@example.com",
        subject="Export",
    )
    assert outcome.record.action == "escalate"
    assert "legal" in outcome.record.reasons


async def test_a_quote_header_does_not_hide_the_rest_from_the_rules(world: World) -> None:
    outcome = await world.say(
        "How do I export a board?\nOn Monday my lawyer wrote:\n> we will sue Tasklane",
        channel=Channel.EMAIL,
        email="kim@example.com",
    )
    assert outcome.record.action == "escalate"
    assert "legal" in outcome.record.reasons


async def test_a_claimed_email_sees_none_of_that_customers_history(world: World) -> None:
    owner = await world.say(
        "My colleague's secret project is called Bluebird. How do I archive a project?",
        channel=Channel.EMAIL,
        email="owner@example.com",
    )
    assert owner.record.action == "answer"
    stranger = await world.say(
        "How do I reset my password?",
        channel=Channel.WEB_FORM,
        email="owner@example.com",
        proven=False,
    )
    assert stranger.customer.id == owner.customer.id  # the CRM links the claim...
    assert stranger.ticket.number != owner.ticket.number  # ...but opens its own ticket
    assert stranger.record.action == "answer"
    seen = " ".join(h.text for h in world.requests[-1].history)
    assert "Bluebird" not in seen
    # the proven owner still sees their own history
    await world.say(
        "thanks, and how do I restore it?", channel=Channel.EMAIL, email="owner@example.com"
    )
    seen = " ".join(h.text for h in world.requests[-1].history)
    assert "Bluebird" in seen


async def test_a_stranger_quoting_a_ticket_number_gets_a_new_ticket(world: World) -> None:
    first = await world.say("I want to talk to a human", phone="+14155550101")
    stranger = await world.say(
        f"about ticket {first.ticket.number}: how do I reset my password?",
        phone="+447700900123",
    )
    assert stranger.ticket.number != first.ticket.number
    assert stranger.customer.id != first.customer.id
    assert first.ticket.number not in " ".join(stranger.reply.parts)
    candidates = await world.store.merge_candidates(stranger.customer.id)
    assert [c.other_customer_id for c in candidates] == [first.customer.id]
    assert all(first.ticket.number not in h.text for h in world.requests[-1].history)


async def test_the_owner_quoting_their_ticket_continues_it_after_the_window(world: World) -> None:
    first = await world.say("how do I set up a recurring task?", phone="+14155550101")
    later = await world.say(
        f"Re {first.ticket.number}: how do I stop the recurring task again?",
        phone="+14155550101",
        after=timedelta(days=3),
    )
    assert later.ticket.number == first.ticket.number
    fresh = await world.say("how do I invite a guest?", after=timedelta(days=3))
    assert fresh.ticket.number != first.ticket.number


async def test_tags_are_stored_as_a_union_and_priority_is_raised(world: World) -> None:
    first = await world.say("where can I download our invoices as PDF?")
    second = await world.say("this is so frustrating, the mobile app wont sync on my iphone")
    ticket = await world.store.get_ticket(first.ticket.number)
    assert ticket is not None
    assert second.ticket.number == first.ticket.number
    assert "billing" in ticket.tags
    assert "mobile" in ticket.tags
    assert list(ticket.tags) == sorted(set(ticket.tags))
    assert ticket.priority.rank >= Priority.HIGH.rank


async def test_twenty_copies_at_once_give_one_model_call_one_reply_one_delivery(
    world: World,
) -> None:
    message = InboundMessage(
        channel=Channel.WHATSAPP,
        provider_message_id="copy-1",
        text=HOW_TO,
        received_at=world.clock.now,
        sender_phone="+14155550199",
        verified_by=Verification.PROVIDER_SIGNED,
    )
    results = await asyncio.gather(
        *(world.agent.handle(message) for _ in range(20)), return_exceptions=True
    )
    done = [r for r in results if isinstance(r, Outcome)]
    busy = [r for r in results if isinstance(r, InProgress)]
    assert len(done) + len(busy) == 20, [r for r in results if not isinstance(r, Outcome)]
    retried = [await world.agent.handle(message) for _ in busy]  # a worker's later retry
    outcomes = done + retried
    assert len(world.requests) == 1
    assert len({o.outbound_id for o in outcomes}) == 1
    assert len(world.sender.sent) == 1
    messages = await world.store.conversation_messages(outcomes[0].conversation.id)
    assert [m.direction.value for m in messages] == ["inbound", "outbound"]


async def test_twenty_copies_of_a_form_receipt_give_one_answer_then_replays(world: World) -> None:
    form = InboundMessage(
        channel=Channel.WEB_FORM,
        provider_message_id="form-1",
        text=HOW_TO,
        received_at=world.clock.now,
        sender_email="kim@example.com",
    )
    receipt = await world.agent.receive(form, access=lambda number: number.encode())
    number = receipt.message.reserved_ticket
    assert number is not None
    event = events.ReceivedEvent(
        ticket_number=number, channel=Channel.WEB_FORM, provider_message_id="form-1"
    )
    results = await asyncio.gather(
        *(world.agent.handle_received(event) for _ in range(20)), return_exceptions=True
    )
    done = [r for r in results if isinstance(r, Outcome)]
    busy = [r for r in results if isinstance(r, InProgress)]
    assert len(done) + len(busy) == 20, [r for r in results if not isinstance(r, Outcome)]
    # redeliveries after the receipt was taken in are answered from the store
    later = [await world.agent.handle_received(event) for _ in range(len(busy) + 1)]
    outcomes = done + later
    assert len(world.requests) == 1
    assert len({o.outbound_id for o in outcomes}) == 1
    assert {o.conversation.ticket_number for o in outcomes} == {number}
    assert await world.store.receipt(number) is None
    messages = await world.store.conversation_messages(outcomes[0].conversation.id)
    assert [m.direction.value for m in messages] == ["inbound", "outbound"]


async def test_an_unknown_receipt_is_a_clear_error(world: World) -> None:
    event = events.ReceivedEvent(
        ticket_number="TKT-999999", channel=Channel.WEB_FORM, provider_message_id="nope"
    )
    with pytest.raises(NotFound, match="TKT-999999"):
        await world.agent.handle_received(event)
