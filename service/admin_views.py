"""What the inbox's pages show, built from the store: the filtered hand-over queue, and a
ticket with its whole conversation, each agent turn explained, and its notes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from fte_core.models import (
    Channel,
    Customer,
    Direction,
    Owner,
    Priority,
    StoredMessage,
    Ticket,
    TicketStatus,
)
from fte_core.ports import TicketNote
from service.admin_explain import Explanation, explain
from service.api import team_of
from service.bootstrap import Runtime

CHANNELS: Mapping[str, str] = {"email": "Email", "whatsapp": "WhatsApp", "web_form": "Web form"}
TEAMS: Mapping[str, str] = {"billing": "Billing", "security": "Security", "support": "Support"}
URGENCIES: Mapping[str, str] = {
    "critical": "Critical",
    "high": "High",
    "normal": "Normal",
    "low": "Low",
}
# "waiting at least": hours -> label
AGES: Mapping[str, str] = {"1": "1 hour", "4": "4 hours", "24": "1 day", "72": "3 days"}
QUEUE_LIMIT = 500


class QueueFilter(msgspec.Struct, frozen=True, kw_only=True):
    """The inbox's filters; an empty string is "any". Unknown values are ignored rather
    than refused: they come from links people keep and edit."""

    team: str = ""
    urgency: str = ""
    channel: str = ""
    age: str = ""

    @classmethod
    def of(cls, team: str, urgency: str, channel: str, age: str) -> QueueFilter:
        return cls(
            team=team if team in TEAMS else "",
            urgency=urgency if urgency in URGENCIES else "",
            channel=channel if channel in CHANNELS else "",
            age=age if age in AGES else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.team or self.urgency or self.channel or self.age)


class QueueRow(msgspec.Struct, frozen=True, kw_only=True):
    ticket: Ticket
    team: str
    urgency: str
    waiting: str  # "3 h 20 min"


def urgency_of(ticket: Ticket) -> Priority:
    return ticket.urgency or ticket.priority


def waiting_for(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def keep(ticket: Ticket, chosen: QueueFilter, now: datetime) -> bool:
    if chosen.team and team_of(ticket.escalation_reason) != chosen.team:
        return False
    if chosen.urgency and urgency_of(ticket).value != chosen.urgency:
        return False
    if chosen.channel and ticket.channel.value != chosen.channel:
        return False
    return not (chosen.age and now - ticket.updated_at < timedelta(hours=int(chosen.age)))


async def queue(runtime: Runtime, chosen: QueueFilter, now: datetime) -> list[QueueRow]:
    """Tickets a person owns, most urgent first and, within an urgency, the longest
    waiting first (the store's order)."""
    tickets = await runtime.store.tickets(owner=Owner.HUMAN, limit=QUEUE_LIMIT)
    return [
        QueueRow(
            ticket=t,
            team=team_of(t.escalation_reason),
            urgency=urgency_of(t).value,
            waiting=waiting_for(t.updated_at, now),
        )
        for t in tickets
        if t.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and keep(t, chosen, now)
    ]


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    message: StoredMessage
    explanation: Explanation | None


class TicketPage(msgspec.Struct, frozen=True, kw_only=True):
    ticket: Ticket
    customer: Customer | None
    turns: tuple[Turn, ...]
    notes: tuple[TicketNote, ...]
    channels: tuple[Channel, ...]  # every channel the conversation used
    team: str
    open: bool  # not resolved or closed: release and resolve apply


async def ticket_page(runtime: Runtime, ticket: Ticket) -> TicketPage:
    store = runtime.store
    messages = await store.conversation_messages(ticket.conversation_id)
    return TicketPage(
        ticket=ticket,
        customer=await store.get_customer(ticket.customer_id),
        turns=tuple(turns(messages, runtime)),
        notes=tuple(await runtime.notes.notes(ticket.number)),
        channels=tuple(sorted({m.channel for m in messages})),
        team=team_of(ticket.escalation_reason),
        open=ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED),
    )


def turns(messages: Sequence[StoredMessage], runtime: Runtime) -> list[Turn]:
    texts = {m.id: m.text for m in messages if m.direction is Direction.INBOUND}
    rules = runtime.policy.rules
    found = []
    for m in messages:
        explanation = None
        if m.record is not None:
            customer_text = texts.get(m.record.message_id)
            answer = m.text if m.direction is Direction.OUTBOUND else None
            explanation = explain(m.record, customer_text, answer, rules)
        found.append(Turn(message=m, explanation=explanation))
    return found
