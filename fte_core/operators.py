"""What an operator does with a ticket a person owns: answer as a human, hand it back to
the agent, or resolve it. The service's operator endpoints and the inbox call these."""

from __future__ import annotations

from fte_core import tools
from fte_core.errors import NotFound, ValidationError
from fte_core.models import Owner, StoredMessage, Ticket, TicketStatus
from fte_core.ports import ChannelSender, CrmStore

MAX_REPLY_CHARS = 20_000


def _operator(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError("operator", "an operator name is required")
    return cleaned[:120]


async def _ticket(store: CrmStore, number: str) -> Ticket:
    ticket = await store.get_ticket(number)
    if ticket is None:
        raise NotFound(f"ticket {number!r}")
    return ticket


async def reply_as_human(
    store: CrmStore,
    number: str,
    text: str,
    operator: str,
    *,
    sender: ChannelSender | None = None,
    queue: bool = False,
) -> StoredMessage:
    """Store the person's reply under their name and deliver it on the customer's channel.

    The ticket stays theirs (the agent keeps holding new messages) and waits for the
    customer. With `queue` (the service) the reply is stored with its `fte.outbound` event
    and the channel senders deliver it; else `sender` delivers it here (none: it stays
    queued); a delivery failure is recorded on the message and raised.
    """
    body = text.strip()
    if not body:
        raise ValidationError("text", "the reply must not be empty")
    if len(body) > MAX_REPLY_CHARS:
        raise ValidationError("text", f"the reply is longer than {MAX_REPLY_CHARS} characters")
    ticket = await _ticket(store, number)
    stored = await store.save_human_reply(ticket.number, body, _operator(operator), announce=queue)
    if ticket.owner is not Owner.HUMAN:
        await store.update_ticket(ticket.number, owner=Owner.HUMAN)
    if queue:
        return stored
    target = await store.reply_target(stored.id)
    return await tools.deliver(store, stored, sender=sender, target=target)


async def release(store: CrmStore, number: str, operator: str) -> Ticket:
    """Hand the ticket back to the agent: it answers the customer's next message again."""
    ticket = await _ticket(store, number)
    status = TicketStatus.OPEN if ticket.status is TicketStatus.ESCALATED else None
    return await store.update_ticket(
        ticket.number, status=status, owner=Owner.BOT, assignee=_operator(operator)
    )


async def resolve(store: CrmStore, number: str, operator: str) -> Ticket:
    """Done. A later message re-opens the ticket within the threading window and is
    answered by the agent again (a new question is not the person's open case)."""
    ticket = await _ticket(store, number)
    return await store.update_ticket(
        ticket.number,
        status=TicketStatus.RESOLVED,
        owner=Owner.BOT,
        assignee=_operator(operator),
    )
