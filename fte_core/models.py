"""The domain's data: plain frozen msgspec Structs, no behaviour beyond invariants.

Everything crossing a port or written to a log is one of these types, so adapters,
the CLI and the service agree on one shape and one JSON encoding.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal, get_args

import msgspec


class Channel(enum.StrEnum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    WEB_FORM = "web_form"


class IdentifierKind(enum.StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    WHATSAPP = "whatsapp"


class Priority(enum.StrEnum):
    """Ticket priority and escalation urgency share one ordered scale."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Allowed ticket transitions. A resolved ticket re-opens when the customer writes again
# inside the threading window; closed is final.
TICKET_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset(
        {TicketStatus.PENDING, TicketStatus.ESCALATED, TicketStatus.RESOLVED}
    ),
    TicketStatus.PENDING: frozenset(
        {TicketStatus.OPEN, TicketStatus.ESCALATED, TicketStatus.RESOLVED}
    ),
    TicketStatus.ESCALATED: frozenset(
        {TicketStatus.RESOLVED, TicketStatus.PENDING, TicketStatus.OPEN}
    ),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.OPEN}),
    TicketStatus.CLOSED: frozenset(),
}


def can_transition(current: TicketStatus, new: TicketStatus) -> bool:
    return current == new or new in TICKET_TRANSITIONS[current]


class Owner(enum.StrEnum):
    """Who answers a ticket: the agent, or a person once it was handed over."""

    BOT = "bot"
    HUMAN = "human"


class Verification(enum.StrEnum):
    """How the sender's address on a message was proven (None on a message: not proven).

    Only a proven address lets a message see that address's earlier conversations; a
    claim (a web form's email field) links the CRM record but reveals nothing.
    """

    PROVIDER_SIGNED = "provider_signed"  # the channel provider signed the webhook (Twilio)
    EMAIL_AUTH = "email_auth"  # the mail provider's SPF or DKIM passed for the From domain
    OPERATOR = "operator"  # typed by an operator on the command line


class Author(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    HUMAN = "human"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENDING = "sending"  # one deliverer holds it; the provider has not answered yet
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"


class Identifier(msgspec.Struct, frozen=True):
    kind: IdentifierKind
    value: str


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    content_type: str
    size: int = 0


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One customer message, normalised by its channel adapter."""

    channel: Channel
    provider_message_id: str
    text: str
    received_at: datetime
    sender_email: str | None = None
    sender_phone: str | None = None
    sender_name: str | None = None
    subject: str | None = None
    thread_ref: str | None = None
    category: str | None = None
    priority: Priority | None = None
    attachments: tuple[Attachment, ...] = ()
    # How the channel's sender address (email on email, phone on WhatsApp) was proven;
    # the web form's addresses are claims (None) unless the intake proved them.
    verified_by: Verification | None = None
    # A ticket whose access token the intake checked: the message may join that ticket.
    ticket_access: str | None = None
    # A ticket number the intake reserved (a web-form request, acknowledged before any
    # worker read it): the message opens that ticket rather than joining another.
    reserved_ticket: str | None = None


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """A message acknowledged at intake and not yet taken in by a worker: the customer
    already holds its ticket number (`message.reserved_ticket`) and may read it."""

    message: InboundMessage
    access_hash: bytes | None  # the ticket's token digest, carried over to the ticket


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str | None
    identifiers: tuple[Identifier, ...]
    created_at: datetime
    # the identifiers a provider proved at least once (a subset of `identifiers`)
    verified: tuple[Identifier, ...] = ()


class MergeCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """Two existing customers one message claims are the same person; a human decides."""

    customer_id: str
    other_customer_id: str
    identifier: Identifier


class CustomerResolution(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    created: bool
    linked: tuple[Identifier, ...] = ()
    merge_candidates: tuple[MergeCandidate, ...] = ()


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    number: str  # TKT-000123
    conversation_id: str
    customer_id: str
    channel: Channel
    status: TicketStatus
    priority: Priority
    category: str | None = None
    escalation_reason: str | None = None
    urgency: Priority | None = None
    owner: Owner = Owner.BOT
    assignee: str | None = None  # the operator who last acted on it
    tags: tuple[str, ...] = ()  # the union of every tag a rule gave it, sorted
    acknowledged_at: datetime | None = None  # the last "a specialist has your case" sent
    created_at: datetime
    updated_at: datetime


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    customer_id: str
    channel: Channel  # channel of origin
    status: TicketStatus
    started_at: datetime
    last_message_at: datetime
    ticket_number: str


class Thread(msgspec.Struct, frozen=True, kw_only=True):
    conversation: Conversation
    ticket: Ticket
    resumed: bool
    reopened: bool = False


# What the model may say about the customer's message beside its reply (fte_core.llm);
# output-stage rules read them with `model_flags_any`.
ModelLabel = Literal[
    "refund",
    "pricing",
    "legal",
    "human_request",
    "account_security",
    "complaint",
    "prompt_injection",
]
MODEL_LABELS: tuple[str, ...] = get_args(ModelLabel)


# What a rule stage may decide (the rule schema's `action:` values, plus allow).
RuleAction = Literal["allow", "escalate", "block"]
# what became of a customer's message: answered, handed over, or held (a person owns it)
ReplyAction = Literal["answer", "escalate", "hold"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules decided for one text at one stage."""

    stage: str  # input | output
    action: RuleAction
    reasons: tuple[str, ...] = ()  # most urgent first
    rule_ids: tuple[str, ...] = ()
    ruleset_version: str = ""
    urgency: Priority | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] = ()
    evaluator: str = "durable_rules"  # durable_rules | reference | failsafe
    error: str | None = None
    text_views: tuple[str, ...] = ()  # "rule-id:view" per fired text rule (fte_core.textviews)
    model_flags: tuple[str, ...] = ()  # the model's labels the output stage read


class Passage(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # document/section-slug/index
    document: str
    section: str
    text: str
    score: float = 0.0
    focus: str = ""  # the sentence of `text` closest to the question, when known
    # the ranker's probability that this passage is the one asked for, among the
    # passages returned for the question (0: unknown)
    share: float = 0.0


class HistoryItem(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    ticket_number: str
    channel: Channel
    direction: Direction
    text: str
    created_at: datetime
    author: Author = Author.CUSTOMER


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class DecisionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The audit trail of one reply: why it said what it said (SPEC 4)."""

    message_id: str
    channel: Channel
    ruleset_version: str
    input_decision: Decision
    output_decision: Decision | None = None
    sentiment: float
    normalized_length: int = 0
    contact_count: int = 0
    passage_ids: tuple[str, ...] = ()
    search_attempts: int = 0
    responder: str = ""  # offline | litellm model id | none
    model: str | None = None
    usage: Usage = Usage()
    latency_ms: dict[str, float] = {}
    action: ReplyAction = "answer"
    escalation_reason: str | None = None
    reasons: tuple[str, ...] = ()  # every escalation reason, most urgent first
    blocked_draft: str | None = None
    fallback: str | None = None
    reply_parts: tuple[str, ...] = ()  # exactly what was sent, part by part


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    conversation_id: str
    channel: Channel
    direction: Direction
    provider_message_id: str | None
    text: str
    created_at: datetime
    delivery_status: DeliveryStatus
    record: DecisionRecord | None = None
    author: Author = Author.CUSTOMER
    author_name: str | None = None  # the operator's name on a human reply
    processed_at: datetime | None = None  # an inbound message the agent has dealt with


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    conversation: Conversation
    ticket: Ticket
    reply: Reply
    record: DecisionRecord
    inbound_id: str
    outbound_id: str | None  # None: held for a person, no acknowledgement due
