"""The agent's tools as plain async functions over the ports.

The pipeline calls them in a fixed order; the MCP server exposes the same functions to
any MCP client, so a tool behaves the same whoever calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from fte_core import events
from fte_core.errors import DeliveryError, NotFound, ValidationError
from fte_core.formatting import DEFAULT_CHANNEL_CONFIGS, split_message
from fte_core.models import (
    Channel,
    DecisionRecord,
    DeliveryStatus,
    HistoryItem,
    Owner,
    Passage,
    Priority,
    Reply,
    StoredMessage,
    Thread,
    Ticket,
    TicketStatus,
)
from fte_core.ports import (
    ChannelSender,
    CrmStore,
    DeliveryTarget,
    EventBus,
    KnowledgeBase,
    OutboundDraft,
)

MAX_RESULTS = 20
# A deliverer holds a reply this long; after it, a crashed deliverer's reply is retried.
DELIVERY_LEASE = timedelta(minutes=5)


async def search_knowledge_base(
    kb: KnowledgeBase, query: str, limit: int = 5, *, embedding: Sequence[float] | None = None
) -> list[Passage]:
    """Best passages first; empty when the knowledge base judges nothing answers.
    `embedding`: the query's vector from kb.embed_queries, when the caller has it."""
    if not query.strip():
        raise ValidationError("query", "must not be empty")
    if not 1 <= limit <= MAX_RESULTS:
        raise ValidationError("limit", f"must be between 1 and {MAX_RESULTS}")
    return await kb.search(query, limit, embedding=embedding)


async def create_ticket(
    store: CrmStore,
    customer_id: str,
    channel: Channel,
    *,
    now: datetime | None = None,
    window: timedelta = timedelta(hours=24),
    category: str | None = None,
    priority: Priority = Priority.NORMAL,
) -> Thread:
    """The customer's open ticket within the window (any channel), or a new one."""
    if await store.get_customer(customer_id) is None:
        raise NotFound(f"customer {customer_id!r}")
    return await store.thread(
        customer_id,
        channel,
        now or datetime.now(UTC),
        window,
        category=category,
        priority=priority,
    )


async def get_customer_history(
    store: CrmStore, customer_id: str, limit: int = 20
) -> list[HistoryItem]:
    """This customer's recent messages over every channel, and no one else's."""
    if not 1 <= limit <= 200:
        raise ValidationError("limit", "must be between 1 and 200")
    if await store.get_customer(customer_id) is None:
        raise NotFound(f"customer {customer_id!r}")
    return await store.customer_history(customer_id, limit)


async def escalate_to_human(
    store: CrmStore,
    bus: EventBus,
    ticket_number: str,
    reasons: tuple[str, ...],
    urgency: Priority,
    *,
    message_id: str,
    channel: Channel,
    now: datetime | None = None,
    tags: Sequence[str] = (),
    priority: Priority | None = None,
) -> Ticket:
    """Mark the ticket escalated (most urgent reason first), give it to a person, and tell
    the humans. From now on the agent holds the customer's messages for that person.
    `tags` and `priority` (raised, never lowered, like the urgency): what the rules gave
    the ticket on the way, stored in the escalation's own update."""
    if not reasons:
        raise ValidationError("reasons", "at least one reason is required")
    current = await store.get_ticket(ticket_number)
    if current is None:
        raise NotFound(f"ticket {ticket_number!r}")
    top = priority if priority is not None and priority.rank > urgency.rank else urgency
    ticket = await store.update_ticket(
        ticket_number,
        status=TicketStatus.ESCALATED,
        escalation_reason=reasons[0],
        urgency=urgency,
        priority=top if top.rank > current.priority.rank else None,
        owner=Owner.HUMAN,
        tags=tags,
    )
    await bus.publish(
        events.ESCALATIONS,
        ticket.customer_id,
        events.EscalationEvent(
            ticket_number=ticket.number,
            customer_id=ticket.customer_id,
            conversation_id=ticket.conversation_id,
            message_id=message_id,
            channel=channel,
            reason=reasons[0],
            reasons=reasons,
            urgency=urgency,
            at=now or datetime.now(UTC),
        ),
    )
    return ticket


async def send_response(
    store: CrmStore,
    draft: OutboundDraft,
    *,
    sender: ChannelSender | None = None,
    target: DeliveryTarget | None = None,
) -> StoredMessage:
    """Store the reply once (a redelivery returns the stored one) and deliver it.

    Without a sender the reply stays `queued` for the outbox relay to deliver.
    """
    stored, _ = await store.save_outbound(draft)
    return await deliver(store, stored, sender=sender, target=target)


async def deliver(
    store: CrmStore,
    stored: StoredMessage,
    *,
    sender: ChannelSender | None,
    target: DeliveryTarget | None,
) -> StoredMessage:
    """Send a stored reply that has not gone out yet; a failure is recorded, then raised."""
    pending = stored.delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.FAILED)
    if sender is None or target is None or not pending:
        return stored
    if not await store.claim_delivery(stored.id, datetime.now(UTC), DELIVERY_LEASE):
        return stored  # another deliverer holds it, or it went out meanwhile
    reply = Reply(channel=stored.channel, parts=reply_parts(stored))
    try:
        result = await sender.send(reply, target)
    except DeliveryError:
        await store.set_delivery_status(stored.id, DeliveryStatus.FAILED)
        raise
    first_id = result.provider_message_ids[0] if result.provider_message_ids else None
    await store.set_delivery_status(stored.id, result.status, first_id)
    return msgspec.structs.replace(stored, delivery_status=result.status)


def reply_parts(stored: StoredMessage) -> tuple[str, ...]:
    """The agent's reply as formatted; a person's reply as written, split only where the
    channel's message size demands it."""
    if stored.record is not None:
        return stored.record.reply_parts
    limit = DEFAULT_CHANNEL_CONFIGS[stored.channel].max_chars_per_part
    return split_message(stored.text, limit) if limit else (stored.text,)


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    ticket_number: str | None
    summary: str
    record: DecisionRecord


async def explain_decision(store: CrmStore, message_id: str) -> Explanation:
    """Why a reply said what it said: the decision record in words and in full."""
    message = await store.get_message(message_id)
    if message is not None and message.record is None:
        message = await store.reply_to(message.id)
    if message is None or message.record is None:
        raise NotFound(f"no decision record for message {message_id!r}")
    conversation = await store.get_conversation(message.conversation_id)
    return Explanation(
        message_id=message.id,
        ticket_number=conversation.ticket_number if conversation else None,
        summary=summarize(message.record),
        record=message.record,
    )


def summarize(record: DecisionRecord) -> str:
    d = record.input_decision
    lines = [f"rule set {record.ruleset_version}, sentiment {record.sentiment:.2f}"]
    if d.rule_ids:
        lines.append(f"input rules fired: {', '.join(d.rule_ids)} ({d.evaluator})")
    if record.action == "escalate":
        lines.append(f"escalated: {record.escalation_reason}")
    if record.passage_ids:
        lines.append(f"knowledge base passages: {', '.join(record.passage_ids)}")
    if record.output_decision and record.output_decision.rule_ids:
        o = record.output_decision
        lines.append(f"output rules fired: {', '.join(o.rule_ids)} -> {o.action}")
    if record.blocked_draft is not None:
        lines.append("the draft answer was blocked and never sent")
    lines.append(f"answered by: {record.responder or 'nobody (hand-over)'}")
    return "; ".join(lines)
