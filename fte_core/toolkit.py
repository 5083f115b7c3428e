"""The agent's tools for callers outside the pipeline (the MCP server), with typed
arguments and the pipeline's own rules.

Each tool takes one frozen msgspec Struct: the MCP server publishes its JSON schema and
decodes arguments into it, so a client and the library share one validation. The rules
hold whoever calls: a message taken in is queued for the pipeline; a reply is checked by
the input rules (on the message it answers) and the output rules (on the draft) before
anything is stored or sent, and a blocked draft is neither.

Which customer: every ticket-scoped tool needs the ticket's access token, the one in its
status link (HMAC of the number with the service's secret, see fte_core.access). A token
proves one ticket, so a history call can only ever return that ticket's customer's
messages, and no more of them than the status page shows. An unknown ticket and a wrong
token get the same NotFound, so ticket numbers cannot be probed.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fte_core import tools
from fte_core.access import access_digest, ticket_token
from fte_core.errors import InvalidTransition, NotFound
from fte_core.formatting import format_for_channel
from fte_core.models import (
    Author,
    Channel,
    Decision,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    HistoryItem,
    InboundMessage,
    Owner,
    Passage,
    Priority,
    StoredMessage,
    Ticket,
    TicketStatus,
)
from fte_core.pipeline import Agent
from fte_core.policy.engine import features
from fte_core.ports import OutboundDraft
from fte_core.tools import MAX_RESULTS, Explanation

log = logging.getLogger(__name__)

TicketNumber = Annotated[
    str, Meta(pattern=r"^TKT-\d{6,}$", description="the ticket number, e.g. TKT-000123")
]
AccessToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        description="the ticket's access token (from create_ticket or its status link)",
    ),
]
Text = Annotated[str, Meta(min_length=1, max_length=20_000)]
Short = Annotated[str, Meta(min_length=1, max_length=300)]
RequestId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9._:-]{1,120}$",
        description="an idempotency key: the same id never creates a second message",
    ),
]
Phone = Annotated[str, Meta(min_length=1, max_length=40, description="E.164: +14155550101")]
Reason = Annotated[
    str,
    Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="a reason code, e.g. refund, legal"),
]


class _Args(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Tool arguments: unknown fields are refused, so a misspelt argument is an error."""


class SearchArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    query: Annotated[str, Meta(min_length=1, max_length=2_000, description="the question")]
    limit: Annotated[int, Meta(ge=1, le=MAX_RESULTS)] = 5


class CreateTicketArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    channel: Channel
    message: Annotated[str, Meta(min_length=1, max_length=20_000, description="what they wrote")]
    email: Short | None = None
    phone: Phone | None = None
    name: Short | None = None
    subject: Short | None = None
    category: Short | None = None
    priority: Priority | None = None
    request_id: RequestId | None = None


class HistoryArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ticket_number: TicketNumber
    access_token: AccessToken
    limit: Annotated[int, Meta(ge=1, le=200)] = 20


class EscalateArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ticket_number: TicketNumber
    access_token: AccessToken
    reason: Reason
    urgency: Priority = Priority.HIGH


class SendResponseArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ticket_number: TicketNumber
    access_token: AccessToken
    text: Annotated[str, Meta(min_length=1, max_length=20_000, description="the reply's body")]


class ExplainArgs(_Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ticket_number: TicketNumber
    access_token: AccessToken
    message_id: Annotated[str, Meta(min_length=1, max_length=100)]


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    passages: tuple[Passage, ...]


class TicketReceipt(msgspec.Struct, frozen=True, kw_only=True):
    ticket_number: str
    status: TicketStatus
    access_token: str
    message_id: str
    created: bool  # False: this request_id was taken in before; nothing new was stored
    # the input rules on the message now; the pipeline decides again when it answers
    input_decision: Decision


class History(msgspec.Struct, frozen=True, kw_only=True):
    ticket_number: str
    items: tuple[HistoryItem, ...]  # oldest first


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["sent", "queued", "blocked", "already_answered"]
    explanation: str
    message_id: str | None = None  # the stored reply (sent, queued, already_answered)
    stage: Literal["input", "output"] | None = None  # the rules that blocked it
    reasons: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()


_SENT = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)


class Toolkit:
    """The six tools over one agent's ports and rules; `secret` signs access tokens."""

    def __init__(self, agent: Agent, secret: bytes) -> None:
        self.agent = agent
        self.secret = secret

    async def search_knowledge_base(self, args: SearchArgs) -> SearchResult:
        passages = await tools.search_knowledge_base(self.agent.knowledge, args.query, args.limit)
        return SearchResult(passages=tuple(passages))

    async def create_ticket(self, args: CreateTicketArgs) -> TicketReceipt:
        """Take a customer's message in like a channel does: stored and queued in one
        transaction for the pipeline, which answers it or hands it over by the rules."""
        message = InboundMessage(
            channel=args.channel,
            provider_message_id=f"mcp-{args.request_id or uuid.uuid4()}",
            text=args.message,
            received_at=self.agent.clock(),
            sender_email=args.email,
            sender_phone=args.phone,
            sender_name=args.name,
            subject=args.subject,
            category=args.category,
            priority=args.priority,
        )
        turn = await self.agent.submit(message, access=access_digest(self.secret))
        number = turn.thread.ticket.number
        token = ticket_token(self.secret, number)
        rule_text = f"{args.subject}\n{args.message}" if args.subject else args.message
        decision = self.agent.policy.evaluate_features("input", features(rule_text, args.channel))
        return TicketReceipt(
            ticket_number=number,
            status=turn.thread.ticket.status,
            access_token=token,
            message_id=turn.inbound.id,
            created=turn.created,
            input_decision=decision,
        )

    async def get_customer_history(self, args: HistoryArgs) -> History:
        """What the ticket's token holder may see: the whole ticket, and the customer's
        other conversations only from addresses its latest message proved."""
        ticket = await self._ticket(args.ticket_number, args.access_token)
        latest = await self._latest_inbound(ticket)
        store = self.agent.store
        items = await store.visible_history(latest.id, args.limit, whole_conversation=True)
        reply = await store.reply_to(latest.id)
        own = [m for m in (latest, reply) if m is not None]
        items.extend(_item(m, ticket.number) for m in own)
        items.sort(key=lambda i: i.created_at)
        return History(ticket_number=ticket.number, items=tuple(items[-args.limit :]))

    async def escalate_to_human(self, args: EscalateArgs) -> Ticket:
        ticket = await self._ticket(args.ticket_number, args.access_token)
        latest = await self._latest_inbound(ticket)
        return await tools.escalate_to_human(
            self.agent.store,
            self.agent.bus,
            ticket.number,
            (args.reason,),
            args.urgency,
            message_id=latest.id,
            channel=latest.channel,
            now=self.agent.clock(),
        )

    async def send_response(self, args: SendResponseArgs) -> SendResult:
        """Answer the ticket's latest customer message, once, if the rules allow it."""
        ticket = await self._ticket(args.ticket_number, args.access_token)
        if ticket.owner is Owner.HUMAN:
            raise InvalidTransition(
                f"ticket {ticket.number}: a person owns it; they answer from the inbox"
            )
        latest = await self._latest_inbound(ticket)
        store = self.agent.store
        existing = await store.reply_to(latest.id)
        if existing is not None:
            return _already(existing)
        inbound = await store.inbound_message(latest.id)
        if inbound is None:
            raise NotFound(f"inbound message {latest.id!r}")
        feats = features(_rule_text(inbound), inbound.channel)
        asked = self.agent.policy.evaluate_features("input", feats)
        if asked.action == "escalate":
            return _blocked("input", asked)
        checked = self.agent.policy.evaluate("output", args.text, inbound.channel)
        if checked.action == "block":
            log.info(
                "send_response on %s blocked by %s", ticket.number, ", ".join(checked.rule_ids)
            )
            return _blocked("output", checked)
        return await self._send(ticket, inbound, latest, args.text, asked, checked, feats.sentiment)

    async def explain_decision(self, args: ExplainArgs) -> Explanation:
        ticket = await self._ticket(args.ticket_number, args.access_token)
        message = await self.agent.store.get_message(args.message_id)
        if message is None or message.conversation_id != ticket.conversation_id:
            raise NotFound(f"no message {args.message_id!r} on ticket {ticket.number}")
        return await tools.explain_decision(self.agent.store, message.id)

    async def _ticket(self, number: str, token: str) -> Ticket:
        expected = ticket_token(self.secret, number)
        ticket = await self.agent.store.get_ticket(number)
        if not hmac.compare_digest(token.encode(), expected.encode()) or ticket is None:
            raise NotFound("no ticket with that number and access token")
        return ticket

    async def _latest_inbound(self, ticket: Ticket) -> StoredMessage:
        messages = await self.agent.store.conversation_messages(ticket.conversation_id)
        inbound = [m for m in messages if m.direction is Direction.INBOUND]
        if not inbound:
            raise NotFound(f"ticket {ticket.number} has no customer message")
        return inbound[-1]

    async def _send(
        self,
        ticket: Ticket,
        inbound: InboundMessage,
        latest: StoredMessage,
        body: str,
        asked: Decision,
        checked: Decision,
        sentiment: float,
    ) -> SendResult:
        store = self.agent.store
        customer = await store.get_customer(ticket.customer_id)
        reply = format_for_channel(
            body,
            inbound.channel,
            ticket_number=ticket.number,
            customer_name=(customer.name if customer else None) or inbound.sender_name,
            config=self.agent.channel_config(inbound.channel, ticket.number),
        )
        record = DecisionRecord(
            message_id=latest.id,
            channel=inbound.channel,
            ruleset_version=checked.ruleset_version,
            input_decision=asked,
            output_decision=checked,
            sentiment=sentiment,
            responder="mcp",
            action="answer",
            reply_parts=reply.parts,
        )
        draft = OutboundDraft(
            conversation_id=ticket.conversation_id,
            channel=inbound.channel,
            in_reply_to=latest.id,
            reply=reply,
            record=record,
            ticket_status=TicketStatus.PENDING if ticket.status is TicketStatus.OPEN else None,
        )
        stored, created = await store.save_outbound(draft)
        if not created:
            return _already(stored)  # another reply won the race: it is the one
        target = await store.reply_target(latest.id)
        stored = await tools.deliver(store, stored, sender=self.agent.sender, target=target)
        sent = stored.delivery_status in _SENT
        return SendResult(
            status="sent" if sent else "queued",
            explanation="passed the input and output rules; "
            + ("delivered to the channel" if sent else "queued for delivery"),
            message_id=stored.id,
            rule_ids=checked.rule_ids,
        )


def _rule_text(message: InboundMessage) -> str:
    """What the pipeline's input rules read: the subject and the whole body."""
    return f"{message.subject}\n{message.text}" if message.subject else message.text


def _item(message: StoredMessage, number: str) -> HistoryItem:
    return HistoryItem(
        conversation_id=message.conversation_id,
        ticket_number=number,
        channel=message.channel,
        direction=message.direction,
        text=message.text,
        created_at=message.created_at,
        author=message.author,
    )


def _already(reply: StoredMessage) -> SendResult:
    who = "a person" if reply.author is Author.HUMAN else "the agent"
    return SendResult(
        status="already_answered",
        explanation=f"the customer's latest message was already answered by {who}; "
        "nothing was sent (one reply per message)",
        message_id=reply.id,
    )


def _blocked(stage: Literal["input", "output"], decision: Decision) -> SendResult:
    if stage == "input":
        why = "the customer's message needs a person (the input rules escalate it)"
    else:
        why = "the draft breaks the output rules"
    return SendResult(
        status="blocked",
        explanation=f"not sent: {why}: {', '.join(decision.reasons)} "
        f"(rules {', '.join(decision.rule_ids)})",
        stage=stage,
        reasons=decision.reasons,
        rule_ids=decision.rule_ids,
    )
