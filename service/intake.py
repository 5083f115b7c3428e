"""What the service's customer endpoints do, independent of HTTP: take a support form in
(stored and queued, never answered inside the request) and show a ticket to the holder of
its access token."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from fte_core.access import access_digest, ticket_token, token_matches
from fte_core.clock import utc_now
from fte_core.errors import StorageError
from fte_core.models import (
    Author,
    Channel,
    Direction,
    InboundMessage,
    Priority,
    Receipt,
    TicketStatus,
)
from service.bootstrap import Runtime
from service.forms import SupportForm

RECEIVED = (
    "Thank you, we have your message. Your ticket number is {ticket}; the answer appears on"
    " its status page, usually within a minute."
)


class FormReceipt(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: str
    status: str
    access_token: str
    status_url: str
    message: str


class MessageView(msgspec.Struct, frozen=True, kw_only=True):
    direction: str  # inbound | outbound
    author: str  # customer | agent | human
    channel: Channel
    text: str
    created_at: datetime


class TicketView(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    messages: tuple[MessageView, ...]


def status_url(runtime: Runtime, number: str, token: str | None = None) -> str:
    token = token or ticket_token(runtime.token_secret, number)
    return f"{runtime.settings.base_url}/status/{number}?token={token}"


async def submit_form(runtime: Runtime, form: SupportForm) -> FormReceipt:
    message = InboundMessage(
        channel=Channel.WEB_FORM,
        provider_message_id=f"form-{uuid.uuid4()}",
        text=form.message,
        received_at=utc_now(),
        sender_email=form.email,
        sender_phone=form.phone,
        sender_name=form.name,
        subject=form.subject,
        category=form.category,
        priority=Priority(form.priority),
    )
    receipt = await runtime.agent.receive(message, access=access_digest(runtime.token_secret))
    number = receipt.message.reserved_ticket
    if number is None:  # receive() reserves one: a store that did not broke its port
        raise StorageError("receive() kept the form without reserving a ticket number")
    token = ticket_token(runtime.token_secret, number)
    return FormReceipt(
        ticket_id=number,
        status=TicketStatus.OPEN.value,
        access_token=token,
        status_url=status_url(runtime, number, token),
        message=RECEIVED.format(ticket=number),
    )


async def ticket_view(runtime: Runtime, number: str, token: str) -> TicketView | None:
    """None for an unknown ticket and a wrong token alike (numbers are sequential)."""
    digest = await runtime.store.access_hash(number)
    if not token_matches(token, digest):
        return None
    ticket = await runtime.store.get_ticket(number)
    if ticket is None:
        receipt = await runtime.store.receipt(number)
        return _receipt_view(number, receipt) if receipt is not None else None
    messages = await runtime.store.conversation_messages(ticket.conversation_id)
    return TicketView(
        ticket_id=ticket.number,
        status=ticket.status.value,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        messages=tuple(
            MessageView(
                direction=m.direction.value,
                author=m.author.value,
                channel=m.channel,
                text=m.text,
                created_at=m.created_at,
            )
            for m in messages
            if m.author is not Author.AGENT or m.text
        ),
    )


def _receipt_view(number: str, receipt: Receipt) -> TicketView:
    """A request no worker has taken in yet: what the customer sent, the ticket open."""
    message = receipt.message
    return TicketView(
        ticket_id=number,
        status=TicketStatus.OPEN.value,
        created_at=message.received_at,
        updated_at=message.received_at,
        messages=(
            MessageView(
                direction=Direction.INBOUND.value,
                author=Author.CUSTOMER.value,
                channel=message.channel,
                text=message.text,
                created_at=message.received_at,
            ),
        ),
    )
