"""The ports: what the core needs from the outside world, as Protocols.

Adapters (PostgreSQL, Kafka, Twilio, Gmail, litellm) implement these; `fte_core.testing`
ships in-memory implementations of every one. The core never imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

import msgspec

from fte_core.events import Event
from fte_core.formatting import ChannelConfig
from fte_core.models import (
    Channel,
    Conversation,
    Customer,
    CustomerResolution,
    DecisionRecord,
    DeliveryStatus,
    HistoryItem,
    Identifier,
    InboundMessage,
    MergeCandidate,
    Owner,
    Passage,
    Priority,
    Receipt,
    Reply,
    StoredMessage,
    Thread,
    Ticket,
    TicketStatus,
    Usage,
)
from fte_core.monitoring import Snapshot


class OutboundDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A reply about to be stored: one row per reply, its parts kept together."""

    conversation_id: str
    channel: Channel
    in_reply_to: str  # id of the inbound StoredMessage
    reply: Reply
    record: DecisionRecord
    latency_ms: float = 0.0
    usage: Usage = Usage()
    # Moved in the same transaction as the reply is stored (the agent's open -> pending),
    # and only when the reply is new and the ticket lifecycle allows the move: a ticket a
    # human changed meanwhile keeps its status, and the reply still goes out.
    ticket_status: TicketStatus | None = None
    # What the rules gave the ticket on the way (tags added, a priority set), applied with
    # the reply in its transaction, and only when the reply is new: one commit instead of
    # one more, and a ticket never carries a decision whose reply was not stored.
    tags: tuple[str, ...] = ()
    priority: Priority | None = None
    # a hand-over: the reply is the ticket's first acknowledgement of the period, stamped
    # at this time with it (claim_acknowledgement's slot, never moved back)
    acknowledged_at: datetime | None = None
    # queue the stored reply for the channel senders (an `fte.outbound` event in the
    # store's outbox) in the same transaction: never stored without being queued
    announce: bool = False
    # (topic, event) pairs the reply comes with (its metrics, an escalation's event),
    # queued in the store's outbox
    # keyed by the reply's customer, in the same transaction and only with a new reply:
    # one commit instead of a publish each, and never one without the other
    events: tuple[tuple[str, Event], ...] = ()


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One inbound message taken in: who wrote, where it belongs, and whether it is new."""

    resolution: CustomerResolution
    thread: Thread
    inbound: StoredMessage
    created: bool  # False: a redelivery of a stored message, returned in its own thread
    contact_count: int  # inbound messages of this customer so far, this one included
    # a ticket the message quoted but may not join (it got a new ticket instead)
    refused_ticket: str | None = None
    # open_turn(claim=...): this caller now holds the message (see open_turn)
    claimed: bool = False


class CrmStore(Protocol):
    """Customers, conversations, tickets and messages (SPEC 6)."""

    async def resolve_customer(
        self, identifiers: Sequence[Identifier], name: str | None
    ) -> CustomerResolution:
        """Find or create the customer owning these (already normalised) identifiers.

        Links identifiers not yet known; never merges two existing customers: a
        conflict is returned (and stored) as a merge candidate. Safe under concurrency.
        """
        ...

    async def get_customer(self, customer_id: str) -> Customer | None: ...

    async def find_customer(self, identifier: Identifier) -> Customer | None: ...

    async def merge_candidates(self, customer_id: str) -> list[MergeCandidate]: ...

    async def thread(
        self,
        customer_id: str,
        channel: Channel,
        now: datetime,
        window: timedelta,
        *,
        category: str | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> Thread:
        """Resume the customer's conversation active within `window` (any channel), re-opening
        a resolved ticket, or open a new conversation with a new ticket."""
        ...

    async def open_turn(
        self,
        message: InboundMessage,
        identifiers: Sequence[Identifier],
        name: str | None,
        now: datetime,
        window: timedelta,
        *,
        category: str | None = None,
        priority: Priority = Priority.NORMAL,
        announce: bool = False,
        access: Callable[[str], bytes] | None = None,
        claim: timedelta | None = None,
    ) -> Turn:
        """Take one message in, atomically: `resolve_customer`, then `thread` (or, for a
        message already stored, that message's own thread), a pending ticket re-opened, the
        message stored once, and the customer's contact count. With `access`, the turn's
        ticket gets token access (`access(number)` is the token's digest) in the same
        transaction: a receipt's token never points at a ticket that does not accept it.
        A message with `reserved_ticket` (a `receive` receipt) opens that ticket, with the
        receipt's token digest, and the receipt is dropped in the same transaction.

        All or nothing (no customer without its message) and one commit instead of four;
        safe under concurrency like the granular methods it stands for. With `announce`,
        a newly stored message is also queued for the workers (an `fte.inbound` event in
        the store's outbox) in the same transaction: never stored without being queued.

        With `claim` (the worker), the message is also held for that lease, from `now`,
        in the same transaction, unless it is processed or another worker's lease on it
        is still running (`Turn.claimed` says which). Its effects are stored with the
        processed mark, so of two copies handled at once exactly one decides and calls the
        model; a holder that died loses the message when its lease runs out.
        """
        ...

    async def receive(self, message: InboundMessage, access: Callable[[str], bytes]) -> Receipt:
        """Intake's fast path for a message that opens its own ticket (the web form): reserve
        a ticket number, keep the message as a receipt with the token digest
        (`access(number)`) and queue it for the workers (an `fte.inbound` ReceivedEvent), in
        one transaction. Identity and thread are the worker's: `open_turn` with the
        receipt's message (`reserved_ticket` set) opens that ticket and drops the receipt
        in its own transaction."""
        ...

    async def receipt(self, number: str) -> Receipt | None:
        """The receipt of a reserved ticket no worker has taken in yet."""
        ...

    async def save_inbound(
        self, message: InboundMessage, customer_id: str, conversation_id: str
    ) -> tuple[StoredMessage, bool]:
        """Store once per (channel, provider message id); returns (message, newly stored)."""
        ...

    async def find_inbound(
        self, channel: Channel, provider_message_id: str
    ) -> StoredMessage | None: ...

    async def save_outbound(self, draft: OutboundDraft) -> tuple[StoredMessage, bool]:
        """Store at most one reply per inbound message; returns (message, newly stored).

        A new reply also applies `draft.ticket_status`, `tags`, `priority` and
        `acknowledged_at` and queues `draft.events` (see OutboundDraft) atomically.
        """
        ...

    async def reply_to(self, inbound_id: str) -> StoredMessage | None: ...

    async def set_delivery_status(
        self, message_id: str, status: DeliveryStatus, provider_message_id: str | None = None
    ) -> None: ...

    async def get_ticket(self, number: str) -> Ticket | None: ...

    async def update_ticket(
        self,
        number: str,
        *,
        status: TicketStatus | None = None,
        priority: Priority | None = None,
        escalation_reason: str | None = None,
        urgency: Priority | None = None,
        owner: Owner | None = None,
        assignee: str | None = None,
        tags: Sequence[str] = (),
    ) -> Ticket:
        """Raises InvalidTransition for a move the ticket lifecycle forbids. `tags` are
        added to the ticket's (a union, kept sorted); None leaves a field as it is."""
        ...

    async def access_hash(self, number: str) -> bytes | None:
        """The ticket's (or a pending receipt's) token digest; None for an unknown ticket or
        one without a token."""
        ...

    async def tickets(
        self,
        *,
        owner: Owner | None = None,
        status: TicketStatus | None = None,
        reason: str | None = None,
        limit: int = 100,
    ) -> list[Ticket]:
        """A queue of tickets, most urgent first, then oldest first."""
        ...

    async def messages_since(self, since: datetime, limit: int = 100_000) -> list[StoredMessage]:
        """Every message stored since `since`, oldest first (for reports)."""
        ...

    async def inbound_message(self, message_id: str) -> InboundMessage | None:
        """A stored customer message as its channel delivered it (what a worker handles)."""
        ...

    async def claim_delivery(self, message_id: str, now: datetime, lease: timedelta) -> bool:
        """Hold a queued (or failed, or abandoned) reply for sending: one deliverer at a
        time, so a retry never sends twice what is being sent."""
        ...

    async def claim_acknowledgement(self, number: str, now: datetime, period: timedelta) -> bool:
        """Take the ticket's acknowledgement slot: True (and stamped) when none was sent
        within `period`, so a held conversation gets at most one per period."""
        ...

    async def record_decision(self, inbound_id: str, record: DecisionRecord) -> None:
        """Store the decision on an inbound message that gets no reply (a hold), marking it
        processed so a redelivery does not decide again."""
        ...

    async def save_human_reply(
        self, number: str, text: str, author_name: str, *, announce: bool = False
    ) -> StoredMessage:
        """A person's answer on the ticket (to its latest customer message), queued for
        delivery; the ticket then waits for the customer and stays theirs. With `announce`
        an `fte.outbound` event is queued in the same transaction."""
        ...

    async def reply_target(self, message_id: str) -> DeliveryTarget | None:
        """Where an answer to this message is delivered (for an outbound message: where
        the answer it is goes)."""
        ...

    async def visible_history(
        self, inbound_id: str, limit: int = 20, *, whole_conversation: bool = False
    ) -> list[HistoryItem]:
        """What the sender of this message may be shown, oldest first, without the message
        itself: messages from an address it proved, in any conversation of the customer,
        and replies to them; with `whole_conversation` (the ticket's access token was
        presented) every message of its conversation too. A claimed address sees nothing
        else."""
        ...

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def conversation_messages(self, conversation_id: str) -> list[StoredMessage]: ...

    async def customer_history(self, customer_id: str, limit: int = 20) -> list[HistoryItem]:
        """The customer's latest messages over all channels, oldest first."""
        ...

    async def contact_count(self, customer_id: str) -> int:
        """How many inbound messages this customer has sent so far."""
        ...

    async def get_message(self, message_id: str) -> StoredMessage | None: ...


class Chunk(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # document/section-slug/index: stable across re-ingests of unchanged text
    document: str
    section: str
    text: str
    # how customers ask for this section in their own words (never shown to them)
    aliases: tuple[str, ...] = ()


class IngestReport(msgspec.Struct, frozen=True, kw_only=True):
    added: int
    updated: int
    removed: int
    unchanged: int


class KnowledgeBase(Protocol):
    async def search(
        self, query: str, limit: int = 5, *, embedding: Sequence[float] | None = None
    ) -> list[Passage]:
        """Best passages first; [] when the base judges that nothing answers the query.

        `embedding` is the query's vector from `embed_queries`; without it the base
        embeds the query itself.
        """
        ...

    async def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        """The queries' vectors by the model this base's chunks were embedded with, in one
        call: the pipeline computes a message's vectors once and passes them to `search`
        (and to anything else comparing the message semantically). A base that has no
        vectors returns an empty list per query."""
        ...

    async def ingest(self, document: str, chunks: Sequence[Chunk]) -> IngestReport:
        """Replace `document`'s chunks: unchanged ones are kept, changed re-embedded."""
        ...

    @property
    def embedder_name(self) -> str | None:
        """The model `embed_queries` uses (None: a base without vectors), so a caller
        knows whether the vectors mean anything to its own thresholds."""
        ...


class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EventBus(Protocol):
    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None: ...


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event handed to a consumer. `id` is stable across redeliveries (and across the
    outbox relay), so a handler can claim it once in `processed_messages`."""

    id: str
    topic: str
    key: str
    payload: bytes  # fte_core.events.encode(...) of the published event
    attempts: int  # deliveries of this event so far, this one included (1 the first time)


class EventConsumer(Protocol):
    """The receiving side of a bus: at-least-once, in order per key.

    A key has at most one delivery out at a time: the next event of that key is handed out
    only after the previous one is acked or dead-lettered, while other keys proceed. A
    delivery neither acked nor retried (its consumer died) is handed out again later.
    """

    async def receive(self, limit: int, max_wait: float) -> list[Delivery]:
        """Up to `limit` deliveries; waits at most `max_wait` seconds for a first one."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The work is stored: the event is never delivered again."""
        ...

    async def retry(self, delivery: Delivery, error: str) -> bool:
        """Handling failed with `error`: deliver again after a backoff, or, once the
        attempts are spent, dead-letter it with the error (returns True)."""
        ...

    async def lag(self) -> int | None:
        """Events waiting to be handed out, when the bus can tell."""
        ...

    async def close(self) -> None:
        """Stop receiving; commit what was acked; what was not is redelivered elsewhere."""
        ...


class Question(msgspec.Struct, frozen=True, kw_only=True):
    """One of the questions a message asks, with the passages retrieved for it alone
    (none: the knowledge base does not answer it, and a person will)."""

    text: str
    passages: tuple[Passage, ...] = ()


class AnswerRequest(msgspec.Struct, frozen=True, kw_only=True):
    question: str
    subject: str | None
    channel: Channel
    customer_name: str | None
    passages: tuple[Passage, ...]
    history: tuple[HistoryItem, ...] = ()
    brand_voice: str = ""
    company: str = ""  # the company the agent speaks for (Context.company)
    # the channel settings the reply will be formatted with, so the model is told the same
    channel_config: ChannelConfig | None = None
    # a message asking several things, split; empty: `question` is one question and
    # `passages` were retrieved for it
    questions: tuple[Question, ...] = ()


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    passage_ids: tuple[str, ...]
    responder: str  # "offline" or the model id that answered
    usage: Usage = Usage()
    fallback: str | None = None  # why a fallback answered, when one did
    # The model's labels for the customer's message (prompts.LABELS_RULE); none offline.
    labels: tuple[str, ...] = ()


class Responder(Protocol):
    """One answer from passages: an LLM (litellm) or the offline extractive responder."""

    @property
    def name(self) -> str: ...

    async def answer(self, request: AnswerRequest) -> Answer: ...


class DeliveryTarget(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    address: str  # email address or E.164 number; web form replies are read on the page
    subject: str | None = None
    thread_ref: str | None = None
    in_reply_to: str | None = None  # provider id of the message answered


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    provider_message_ids: tuple[str, ...]
    status: DeliveryStatus = DeliveryStatus.SENT


class ChannelSender(Protocol):
    async def send(self, reply: Reply, target: DeliveryTarget) -> DeliveryResult:
        """Send the reply's parts in order. Raises DeliveryRejected when the provider
        refuses for good, DeliveryError for anything worth retrying."""
        ...


class DeliveryPart(msgspec.Struct, frozen=True, kw_only=True):
    """One part of a reply the provider accepted, under the provider's message id."""

    index: int  # 0-based position in the reply
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT
    error: str | None = None  # the provider's error code on a failed part


class DeliveryState(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    status: DeliveryStatus
    error: str | None  # why the last send failed, or why the provider gave up
    parts: tuple[DeliveryPart, ...]


class DeliveryLedger(Protocol):
    """What went out for each reply, part by part: a retry skips every part recorded
    here, so nothing the provider accepted is sent twice (fte_core.delivery)."""

    async def record_part(
        self, message_id: str, channel: Channel, index: int, provider_message_id: str
    ) -> None:
        """Record an accepted part at once, before the next part is sent and before the
        reply is marked sent. Recording the same part again changes nothing."""
        ...

    async def state(self, message_id: str) -> DeliveryState | None:
        """The reply's status, error and accepted parts (None: no such outbound message)."""
        ...

    async def settle(self, message_id: str) -> DeliveryStatus:
        """Every part is out: the reply takes the status of its least advanced part (a
        failed part makes it undelivered) and the first part's provider id."""
        ...

    async def record_failure(self, message_id: str, status: DeliveryStatus, error: str) -> None:
        """A send failed: FAILED (to be retried) or UNDELIVERED (given up), with why."""
        ...

    async def part_status(
        self,
        channel: Channel,
        provider_message_id: str,
        status: DeliveryStatus,
        error: str | None = None,
    ) -> DeliveryState | None:
        """A provider's status report for one part. A part only moves forward (a late
        'sent' never undoes 'delivered'); once the reply went out it follows its parts.
        None: the id is not one of ours."""
        ...


ReportKind = Literal["digest", "learning", "shadow"]


class StoredReport(msgspec.Struct, frozen=True, kw_only=True):
    """An operator report as kept: `body` is its JSON document (the format `--format json`
    prints), `html` the page the inbox shows."""

    id: int
    kind: ReportKind
    title: str
    created_at: datetime
    body: bytes
    html: str


class ReportStore(Protocol):
    """Where the digest, the learning report and shadow evaluations are kept."""

    async def save_report(
        self, kind: ReportKind, title: str, body: bytes, html: str
    ) -> StoredReport:
        """`body` must be a JSON document (StorageError otherwise)."""
        ...

    async def latest_report(self, kind: ReportKind) -> StoredReport | None: ...

    async def reports(self, kind: ReportKind, limit: int = 20) -> list[StoredReport]:
        """Newest first."""
        ...


class MailboxState(Protocol):
    """How far each mailbox's sync got (Gmail's history id), per mailbox address.

    Read before fetching new mail and advanced only after what was fetched is stored, so a
    crash in between re-reads and never skips; it never moves backwards.
    """

    async def watermark(self, mailbox: str) -> int | None: ...

    async def advance(self, mailbox: str, history_id: int) -> None:
        """Record `history_id` unless a later one is already recorded."""
        ...

    async def record_watch(self, mailbox: str, history_id: int, expires_at: datetime) -> int:
        """A (renewed) push watch: its expiry kept, and `history_id` as the starting point
        only when the mailbox has none yet (a renewal never jumps over unread mail).
        Returns the watermark in force."""
        ...

    async def watch_expiry(self, mailbox: str) -> datetime | None: ...


class CustomerMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A stored message with the customer it belongs to (reports follow a customer across
    channels and conversations)."""

    customer_id: str
    message: StoredMessage


class QueueFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The event queue as a report sees it; None: this bus cannot tell."""

    queued_by_topic: dict[str, int] | None = None  # events not yet handed out or relayed
    dead_letters: int | None = None  # dead-lettered within the report's period
    dead_letters_total: int | None = None


class ReportQueries(Protocol):
    """Read-only queries for the operators' reports (the digest, the resolution rate)."""

    async def customer_messages(self, since: datetime, until: datetime) -> list[CustomerMessage]:
        """Every message stored in [since, until), oldest first, with its customer."""
        ...

    async def queue_figures(self, since: datetime, until: datetime) -> QueueFigures: ...


class TicketNote(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's note on a ticket: for colleagues, never sent to the customer."""

    id: int
    ticket_number: str
    author: str
    text: str
    created_at: datetime


class TicketNotes(Protocol):
    """Operators' notes on tickets (the inbox)."""

    async def add_note(self, number: str, author: str, text: str) -> TicketNote:
        """NotFound for an unknown ticket."""
        ...

    async def notes(self, number: str) -> list[TicketNote]:
        """Oldest first."""
        ...


class OperationsReader(Protocol):
    """The operations figures `/metrics` exports and the alerts are judged on."""

    async def snapshot(self, now: datetime, window: timedelta) -> Snapshot:
        """Totals since the beginning, and per channel the figures of the last `window`."""
        ...
