"""InMemoryStore: the CrmStore contract without a database.

It behaves exactly like adapters.storage.postgres.PostgresStore (one contract suite runs
against both), so pipeline tests written against it hold in production. Every method
runs without an await point, which makes each call atomic under asyncio just as the
PostgreSQL store's transactions are.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import msgspec

from fte_core import events
from fte_core.clock import Clock, as_utc, utc_now
from fte_core.errors import InvalidTransition, NotFound
from fte_core.identity import (
    canonical_identifiers,
    clean_name,
    delivery_target,
    identifier_key,
    identifiers_for,
    normalize_identifier,
    proven_identifiers,
    sender_keys,
    ticket_references,
    with_proven,
)
from fte_core.models import (
    Author,
    Channel,
    Conversation,
    Customer,
    CustomerResolution,
    DecisionRecord,
    DeliveryStatus,
    Direction,
    HistoryItem,
    Identifier,
    InboundMessage,
    MergeCandidate,
    Owner,
    Priority,
    Receipt,
    StoredMessage,
    Thread,
    Ticket,
    TicketStatus,
    Verification,
    can_transition,
)
from fte_core.ports import DeliveryTarget, OutboundDraft, Turn

T = TypeVar("T")
Announce = Callable[[str, str, msgspec.Struct], Awaitable[None]]


def _keep(current: T, new: T | None) -> T:
    return current if new is None else new


def ticket_number(value: int) -> str:
    return f"TKT-{value:06d}"


class _CustomerRow(msgspec.Struct, kw_only=True):
    id: str
    name: str | None
    created_at: datetime
    identifiers: list[Identifier]


class InMemoryStore:
    """A complete CrmStore in dictionaries; `clock` stamps rows the caller does not date."""

    def __init__(self, *, clock: Clock = utc_now, on_announce: Announce | None = None) -> None:
        """`on_announce` receives what `open_turn(announce=True)` queues (e.g. an in-memory
        bus's publish); `outbox` keeps it too."""
        self._clock = clock
        self.on_announce = on_announce
        self.outbox: list[tuple[str, str, bytes]] = []
        self._customers: dict[str, _CustomerRow] = {}
        self._owners: dict[Identifier, str] = {}
        self._candidates: list[MergeCandidate] = []
        self._conversations: dict[str, Conversation] = {}
        self._tickets: dict[str, Ticket] = {}
        self._messages: dict[str, StoredMessage] = {}
        self._message_order: list[str] = []
        self._inbound_index: dict[tuple[Channel, str], str] = {}
        self._replies: dict[str, str] = {}
        self._ticket_seq = itertools.count(1)
        self._verified: dict[Identifier, Verification] = {}
        # per inbound message id: the addresses it claimed and proved, where to answer it
        self._senders: dict[str, frozenset[str]] = {}
        self._proven: dict[str, frozenset[str]] = {}
        self._targets: dict[str, DeliveryTarget | None] = {}
        self._reply_of: dict[str, str] = {}  # outbound message id -> the inbound it answers
        self._inbound_messages: dict[str, InboundMessage] = {}
        self._access: dict[str, bytes] = {}  # ticket number -> its token's digest
        self._receipts: dict[str, Receipt] = {}  # reserved ticket number -> its receipt
        self._claims: dict[str, datetime] = {}  # inbound id -> held until
        self._sending: dict[str, datetime] = {}  # outbound id -> held for sending until

    # customers ---------------------------------------------------------------------------

    async def resolve_customer(
        self, identifiers: Sequence[Identifier], name: str | None
    ) -> CustomerResolution:
        wanted = canonical_identifiers(identifiers)
        owned = [(i, self._owners.get(i)) for i in wanted]
        owners = [owner for _, owner in owned if owner is not None]
        if not owners:
            return CustomerResolution(customer=self._create(wanted, name), created=True)
        primary = owners[0]
        linked = [i for i, owner in owned if owner is None]
        for identifier in linked:
            self._owners[identifier] = primary
            self._customers[primary].identifiers.append(identifier)
        candidates = [
            MergeCandidate(customer_id=primary, other_customer_id=owner, identifier=i)
            for i, owner in owned
            if owner is not None and owner != primary
        ]
        for candidate in candidates:
            if candidate not in self._candidates:
                self._candidates.append(candidate)
        row = self._customers[primary]
        if row.name is None:
            row.name = clean_name(name)
        return CustomerResolution(
            customer=self._customer(primary),
            created=False,
            linked=tuple(linked),
            merge_candidates=tuple(candidates),
        )

    def _create(self, identifiers: list[Identifier], name: str | None) -> Customer:
        customer_id = str(uuid.uuid4())
        self._customers[customer_id] = _CustomerRow(
            id=customer_id, name=clean_name(name), created_at=self._clock(), identifiers=identifiers
        )
        for identifier in identifiers:
            self._owners[identifier] = customer_id
        return self._customer(customer_id)

    def _customer(self, customer_id: str) -> Customer:
        row = self._customers[customer_id]
        return Customer(
            id=row.id,
            name=row.name,
            identifiers=tuple(row.identifiers),
            created_at=row.created_at,
            verified=tuple(i for i in row.identifiers if i in self._verified),
        )

    async def get_customer(self, customer_id: str) -> Customer | None:
        return self._customer(customer_id) if customer_id in self._customers else None

    async def find_customer(self, identifier: Identifier) -> Customer | None:
        owner = self._owners.get(normalize_identifier(identifier))
        return self._customer(owner) if owner else None

    async def merge_candidates(self, customer_id: str) -> list[MergeCandidate]:
        return [c for c in self._candidates if customer_id in (c.customer_id, c.other_customer_id)]

    # conversations and tickets -------------------------------------------------------------

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
        if customer_id not in self._customers:
            raise NotFound(f"customer {customer_id}")
        now = as_utc(now, "now")
        active = self._active_conversation(customer_id, now - window)
        if active is None:
            return self._open_thread(customer_id, channel, now, category, priority)
        return self._resume(active, now)

    def _resume(self, active: Conversation, now: datetime) -> Thread:
        ticket = self._tickets[active.ticket_number]
        reopened = ticket.status is TicketStatus.RESOLVED
        if reopened:
            ticket = msgspec.structs.replace(ticket, status=TicketStatus.OPEN, updated_at=now)
            self._tickets[ticket.number] = ticket
        conversation = msgspec.structs.replace(
            active, status=ticket.status, last_message_at=max(active.last_message_at, now)
        )
        self._conversations[conversation.id] = conversation
        return Thread(conversation=conversation, ticket=ticket, resumed=True, reopened=reopened)

    def _active_conversation(
        self, customer_id: str, since: datetime, proven: set[str] | None = None
    ) -> Conversation | None:
        candidates = [
            c
            for c in self._conversations.values()
            if c.customer_id == customer_id
            and c.last_message_at >= since
            and self._tickets[c.ticket_number].status is not TicketStatus.CLOSED
            and (proven is None or self._wrote_in(self._tickets[c.ticket_number], proven))
        ]
        return max(candidates, key=lambda c: c.last_message_at, default=None)

    def _open_thread(
        self,
        customer_id: str,
        channel: Channel,
        now: datetime,
        category: str | None,
        priority: Priority,
        number: str | None = None,
    ) -> Thread:
        number = number or ticket_number(next(self._ticket_seq))
        conversation = Conversation(
            id=str(uuid.uuid4()),
            customer_id=customer_id,
            channel=channel,
            status=TicketStatus.OPEN,
            started_at=now,
            last_message_at=now,
            ticket_number=number,
        )
        ticket = Ticket(
            number=number,
            conversation_id=conversation.id,
            customer_id=customer_id,
            channel=channel,
            status=TicketStatus.OPEN,
            priority=priority,
            category=category,
            created_at=now,
            updated_at=now,
        )
        self._conversations[conversation.id] = conversation
        self._tickets[number] = ticket
        return Thread(conversation=conversation, ticket=ticket, resumed=False)

    async def get_ticket(self, number: str) -> Ticket | None:
        return self._tickets.get(number)

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
        ticket = self._tickets.get(number)
        if ticket is None:
            raise NotFound(f"ticket {number}")
        if status is not None and not can_transition(ticket.status, status):
            raise InvalidTransition(f"ticket {number}: {ticket.status} -> {status}")
        ticket = msgspec.structs.replace(
            ticket,
            status=_keep(ticket.status, status),
            priority=_keep(ticket.priority, priority),
            escalation_reason=_keep(ticket.escalation_reason, escalation_reason),
            urgency=_keep(ticket.urgency, urgency),
            owner=_keep(ticket.owner, owner),
            assignee=_keep(ticket.assignee, assignee),
            tags=tuple(sorted({*ticket.tags, *tags})),
            updated_at=self._clock(),
        )
        self._tickets[number] = ticket
        conversation = self._conversations[ticket.conversation_id]
        self._conversations[conversation.id] = msgspec.structs.replace(
            conversation, status=ticket.status
        )
        return ticket

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get(conversation_id)

    # intake ------------------------------------------------------------------------------

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
        """The granular methods in a row: none of them suspends, so under asyncio the turn
        is atomic. Everything that can be refused is checked before anything is written."""
        as_utc(message.received_at, "received_at")
        now = as_utc(now, "now")
        canonical_identifiers(identifiers)
        resolution = await self.resolve_customer(identifiers, name)
        customer_id = resolution.customer.id
        proven = {identifier_key(i) for i in proven_identifiers(message)}
        for identifier in proven_identifiers(message):
            self._verified.setdefault(identifier, message.verified_by or Verification.OPERATOR)
        resolution = with_proven(resolution, proven_identifiers(message))
        existing = await self.find_inbound(message.channel, message.provider_message_id)
        refused = None
        if existing is None:
            thread, refused = self._choose_thread(
                customer_id, message, proven, now, window, category, priority
            )
        else:
            conversation = self._conversations[existing.conversation_id]
            ticket = self._tickets[conversation.ticket_number]
            thread = Thread(conversation=conversation, ticket=ticket, resumed=True)
        if thread.ticket.status is TicketStatus.PENDING:
            ticket = await self.update_ticket(thread.ticket.number, status=TicketStatus.OPEN)
            conversation = self._conversations[ticket.conversation_id]
            thread = msgspec.structs.replace(thread, conversation=conversation, ticket=ticket)
        if existing is None:
            inbound, created = await self.save_inbound(message, customer_id, thread.conversation.id)
            if announce:
                event = events.InboundEvent(
                    message_id=inbound.id,
                    channel=message.channel,
                    provider_message_id=message.provider_message_id,
                )
                self.outbox.append((events.INBOUND, customer_id, events.encode(event)))
                if self.on_announce is not None:
                    await self.on_announce(events.INBOUND, customer_id, event)
        else:
            inbound, created = existing, False
        receipt = self._receipts.pop(message.reserved_ticket or "", None)
        if receipt is not None and receipt.access_hash is not None:
            self._access[thread.ticket.number] = receipt.access_hash
        if access is not None:
            self._access[thread.ticket.number] = access(thread.ticket.number)
        return Turn(
            resolution=resolution,
            thread=thread,
            inbound=inbound,
            created=created,
            contact_count=await self.contact_count(customer_id),
            refused_ticket=refused,
            claimed=claim is not None and self._claim(inbound.id, now, claim),
        )

    def _choose_thread(
        self,
        customer_id: str,
        message: InboundMessage,
        proven: set[str],
        now: datetime,
        window: timedelta,
        category: str | None,
        priority: Priority,
    ) -> tuple[Thread, str | None]:
        """As PostgresStore._choose_thread: a ticket is joined only with a proven address
        that wrote in it, or its access token."""
        quoted = ticket_references(message.subject, message.text)
        if message.reserved_ticket is not None:
            if quoted:
                self._record_claim(customer_id, message, quoted[0])
            thread = self._open_thread(
                customer_id, message.channel, now, category, priority, message.reserved_ticket
            )
            return thread, quoted[0] if quoted else None
        wanted = ((message.ticket_access,) if message.ticket_access else ()) + quoted
        for number in dict.fromkeys(wanted):
            ticket = self._tickets.get(number)
            if (
                ticket is not None
                and ticket.customer_id == customer_id
                and ticket.status is not TicketStatus.CLOSED
                and (number == message.ticket_access or self._wrote_in(ticket, proven))
            ):
                return self._resume(self._conversations[ticket.conversation_id], now), None
        if quoted:
            self._record_claim(customer_id, message, quoted[0])
            return self._open_thread(customer_id, message.channel, now, category, priority), quoted[
                0
            ]
        active = self._active_conversation(customer_id, now - window, proven)
        if active is None:
            return self._open_thread(customer_id, message.channel, now, category, priority), None
        return self._resume(active, now), None

    def _record_claim(self, customer_id: str, message: InboundMessage, number: str) -> None:
        other = self._tickets.get(number)
        if other is not None and other.customer_id != customer_id:
            candidate = MergeCandidate(
                customer_id=customer_id,
                other_customer_id=other.customer_id,
                identifier=identifiers_for(message)[0],
            )
            if candidate not in self._candidates:
                self._candidates.append(candidate)

    def _wrote_in(self, ticket: Ticket, proven: set[str]) -> bool:
        return any(
            self._senders.get(m.id, frozenset()) & proven
            for m in self._messages.values()
            if m.conversation_id == ticket.conversation_id and m.direction is Direction.INBOUND
        )

    # messages ----------------------------------------------------------------------------

    async def save_inbound(
        self, message: InboundMessage, customer_id: str, conversation_id: str
    ) -> tuple[StoredMessage, bool]:
        received_at = as_utc(message.received_at, "received_at")
        existing = await self.find_inbound(message.channel, message.provider_message_id)
        if existing is not None:
            return existing, False
        conversation = self._conversations.get(conversation_id)
        if conversation is None or conversation.customer_id != customer_id:
            raise NotFound(f"conversation {conversation_id} of customer {customer_id}")
        stored = StoredMessage(
            id=str(uuid.uuid4()),
            conversation_id=conversation_id,
            channel=message.channel,
            direction=Direction.INBOUND,
            provider_message_id=message.provider_message_id,
            text=message.text,
            created_at=received_at,
            delivery_status=DeliveryStatus.RECEIVED,
        )
        self._add(stored)
        self._inbound_index[(message.channel, message.provider_message_id)] = stored.id
        self._senders[stored.id] = frozenset(sender_keys(message))
        self._inbound_messages[stored.id] = message
        self._proven[stored.id] = frozenset(identifier_key(i) for i in proven_identifiers(message))
        self._targets[stored.id] = delivery_target(
            message.channel,
            sorted(self._senders[stored.id]),
            message.subject,
            message.thread_ref,
            message.provider_message_id,
        )
        return stored, True

    async def find_inbound(
        self, channel: Channel, provider_message_id: str
    ) -> StoredMessage | None:
        message_id = self._inbound_index.get((channel, provider_message_id))
        return self._messages[message_id] if message_id else None

    async def save_outbound(self, draft: OutboundDraft) -> tuple[StoredMessage, bool]:
        existing = await self.reply_to(draft.in_reply_to)
        if existing is not None:
            return existing, False
        inbound = self._messages.get(draft.in_reply_to)
        if inbound is None or inbound.direction is not Direction.INBOUND:
            raise NotFound(f"inbound message {draft.in_reply_to}")
        if draft.conversation_id not in self._conversations:
            raise NotFound(f"conversation {draft.conversation_id}")
        stored = StoredMessage(
            id=str(uuid.uuid4()),
            conversation_id=draft.conversation_id,
            channel=draft.channel,
            direction=Direction.OUTBOUND,
            provider_message_id=None,
            text=draft.reply.text,
            created_at=self._clock(),
            delivery_status=DeliveryStatus.QUEUED,
            record=draft.record,
            author=Author.AGENT,
        )
        self._add(stored)
        self._replies[draft.in_reply_to] = stored.id
        self._reply_of[stored.id] = draft.in_reply_to
        self._messages[inbound.id] = msgspec.structs.replace(inbound, processed_at=self._clock())
        if draft.ticket_status is not None:
            self._move_ticket(draft.conversation_id, draft.ticket_status)
        ticket = self._ticket_of(draft)
        if draft.priority is not None or not set(draft.tags) <= set(ticket.tags):
            ticket = msgspec.structs.replace(
                ticket,
                priority=_keep(ticket.priority, draft.priority),
                tags=tuple(sorted({*ticket.tags, *draft.tags})),
                updated_at=self._clock(),
            )
        if draft.acknowledged_at is not None:
            stamp = as_utc(draft.acknowledged_at, "acknowledged_at")
            if ticket.acknowledged_at is None or ticket.acknowledged_at < stamp:
                ticket = msgspec.structs.replace(ticket, acknowledged_at=stamp)
        self._tickets[ticket.number] = ticket
        if draft.announce:
            await self._announce_outbound(stored)
        customer_id = self._conversations[draft.conversation_id].customer_id
        for topic, event in draft.events:
            self.outbox.append((topic, customer_id, events.encode(event)))
            if self.on_announce is not None:
                await self.on_announce(topic, customer_id, event)
        return stored, True

    async def _announce_outbound(self, stored: StoredMessage) -> None:
        customer_id = self._conversations[stored.conversation_id].customer_id
        event = events.OutboundEvent(message_id=stored.id, channel=stored.channel)
        self.outbox.append((events.OUTBOUND, customer_id, events.encode(event)))
        if self.on_announce is not None:
            await self.on_announce(events.OUTBOUND, customer_id, event)

    def _ticket_of(self, draft: OutboundDraft) -> Ticket:
        return self._tickets[self._conversations[draft.conversation_id].ticket_number]

    def _move_ticket(self, conversation_id: str, status: TicketStatus) -> None:
        conversation = self._conversations[conversation_id]
        ticket = self._tickets[conversation.ticket_number]
        if not can_transition(ticket.status, status):
            return
        self._tickets[ticket.number] = msgspec.structs.replace(
            ticket, status=status, updated_at=self._clock()
        )
        self._conversations[conversation_id] = msgspec.structs.replace(conversation, status=status)

    def _add(self, message: StoredMessage) -> None:
        self._messages[message.id] = message
        self._message_order.append(message.id)

    async def reply_to(self, inbound_id: str) -> StoredMessage | None:
        message_id = self._replies.get(inbound_id)
        return self._messages[message_id] if message_id else None

    async def set_delivery_status(
        self, message_id: str, status: DeliveryStatus, provider_message_id: str | None = None
    ) -> None:
        message = self._messages.get(message_id)
        if message is None:
            raise NotFound(f"message {message_id}")
        self._messages[message_id] = msgspec.structs.replace(
            message,
            delivery_status=status,
            provider_message_id=provider_message_id or message.provider_message_id,
        )

    async def get_message(self, message_id: str) -> StoredMessage | None:
        return self._messages.get(message_id)

    async def conversation_messages(self, conversation_id: str) -> list[StoredMessage]:
        return self._ordered(
            m for m in self._all_messages() if m.conversation_id == conversation_id
        )

    async def customer_history(self, customer_id: str, limit: int = 20) -> list[HistoryItem]:
        if limit <= 0:
            return []
        mine = self._ordered(m for m in self._all_messages() if self._owner(m) == customer_id)
        return [self._history_item(m) for m in mine[-limit:]]

    async def contact_count(self, customer_id: str) -> int:
        return sum(
            1
            for m in self._all_messages()
            if m.direction is Direction.INBOUND and self._owner(m) == customer_id
        )

    def _all_messages(self) -> list[StoredMessage]:
        return [self._messages[i] for i in self._message_order]

    def _ordered(self, messages: Iterable[StoredMessage]) -> list[StoredMessage]:
        """By time, ties in insertion order (sorted() is stable), like ORDER BY created_at,
        seq in PostgreSQL."""
        return sorted(messages, key=lambda m: m.created_at)

    def _owner(self, message: StoredMessage) -> str:
        return self._conversations[message.conversation_id].customer_id

    def _history_item(self, message: StoredMessage) -> HistoryItem:
        conversation = self._conversations[message.conversation_id]
        return HistoryItem(
            conversation_id=conversation.id,
            ticket_number=conversation.ticket_number,
            channel=message.channel,
            direction=message.direction,
            text=message.text,
            created_at=message.created_at,
            author=message.author,
        )

    # lifecycle ---------------------------------------------------------------------------

    async def access_hash(self, number: str) -> bytes | None:
        receipt = self._receipts.get(number)
        return receipt.access_hash if receipt is not None else self._access.get(number)

    async def receive(self, message: InboundMessage, access: Callable[[str], bytes]) -> Receipt:
        as_utc(message.received_at, "received_at")
        number = ticket_number(next(self._ticket_seq))
        kept = msgspec.structs.replace(message, reserved_ticket=number)
        receipt = Receipt(message=kept, access_hash=access(number))
        self._receipts[number] = receipt
        key = identifier_key(identifiers_for(message)[0])
        event = events.ReceivedEvent(
            ticket_number=number,
            channel=message.channel,
            provider_message_id=message.provider_message_id,
        )
        self.outbox.append((events.INBOUND, key, events.encode(event)))
        if self.on_announce is not None:
            await self.on_announce(events.INBOUND, key, event)
        return receipt

    async def receipt(self, number: str) -> Receipt | None:
        return self._receipts.get(number)

    async def tickets(
        self,
        *,
        owner: Owner | None = None,
        status: TicketStatus | None = None,
        reason: str | None = None,
        limit: int = 100,
    ) -> list[Ticket]:
        found = [
            t
            for t in self._tickets.values()
            if (owner is None or t.owner is owner)
            and (status is None or t.status is status)
            and (reason is None or t.escalation_reason == reason)
        ]
        found.sort(key=lambda t: (-(t.urgency or t.priority).rank, t.updated_at, t.number))
        return found[: max(1, min(limit, 500))]

    async def messages_since(self, since: datetime, limit: int = 100_000) -> list[StoredMessage]:
        since = as_utc(since, "since")
        return self._ordered(m for m in self._all_messages() if m.created_at >= since)[:limit]

    async def inbound_message(self, message_id: str) -> InboundMessage | None:
        return self._inbound_messages.get(message_id)

    def _claim(self, inbound_id: str, now: datetime, lease: timedelta) -> bool:
        message = self._messages.get(inbound_id)
        if message is None or message.direction is not Direction.INBOUND:
            return False
        held = self._claims.get(inbound_id)
        if message.processed_at is not None or (held is not None and held > now):
            return False
        self._claims[inbound_id] = now + lease
        return True

    async def claim_delivery(self, message_id: str, now: datetime, lease: timedelta) -> bool:
        now = as_utc(now, "now")
        message = self._messages.get(message_id)
        if message is None or message.direction is not Direction.OUTBOUND:
            return False
        status = message.delivery_status
        abandoned = status is DeliveryStatus.SENDING and self._sending.get(message_id, now) <= now
        if status not in (DeliveryStatus.QUEUED, DeliveryStatus.FAILED) and not abandoned:
            return False
        self._messages[message_id] = msgspec.structs.replace(
            message, delivery_status=DeliveryStatus.SENDING
        )
        self._sending[message_id] = now + lease
        return True

    async def claim_acknowledgement(self, number: str, now: datetime, period: timedelta) -> bool:
        now = as_utc(now, "now")
        ticket = self._tickets.get(number)
        if ticket is None:
            return False
        if ticket.acknowledged_at is not None and ticket.acknowledged_at > now - period:
            return False
        self._tickets[number] = msgspec.structs.replace(ticket, acknowledged_at=now)
        return True

    async def record_decision(self, inbound_id: str, record: DecisionRecord) -> None:
        message = self._messages.get(inbound_id)
        if message is None or message.direction is not Direction.INBOUND:
            raise NotFound(f"inbound message {inbound_id}")
        self._messages[inbound_id] = msgspec.structs.replace(
            message, record=record, processed_at=self._clock()
        )

    async def save_human_reply(
        self, number: str, text: str, author_name: str, *, announce: bool = False
    ) -> StoredMessage:
        ticket = self._tickets.get(number)
        if ticket is None:
            raise NotFound(f"ticket {number}")
        if ticket.status is TicketStatus.CLOSED:
            raise InvalidTransition(f"ticket {number} is closed")
        inbound = [
            m
            for m in self._ordered(self._all_messages())
            if m.conversation_id == ticket.conversation_id and m.direction is Direction.INBOUND
        ]
        if not inbound:
            raise NotFound(f"a customer message on ticket {number}")
        stored = StoredMessage(
            id=str(uuid.uuid4()),
            conversation_id=ticket.conversation_id,
            channel=inbound[-1].channel,
            direction=Direction.OUTBOUND,
            provider_message_id=None,
            text=text,
            created_at=self._clock(),
            delivery_status=DeliveryStatus.QUEUED,
            author=Author.HUMAN,
            author_name=author_name,
        )
        self._add(stored)
        self._reply_of[stored.id] = inbound[-1].id
        waiting = (
            TicketStatus.PENDING
            if ticket.status in (TicketStatus.OPEN, TicketStatus.ESCALATED)
            else ticket.status
        )
        await self.update_ticket(number, status=waiting, assignee=author_name)
        if announce:
            await self._announce_outbound(stored)
        return stored

    async def reply_target(self, message_id: str) -> DeliveryTarget | None:
        return self._targets.get(self._reply_of.get(message_id, message_id))

    async def visible_history(
        self, inbound_id: str, limit: int = 20, *, whole_conversation: bool = False
    ) -> list[HistoryItem]:
        me = self._messages.get(inbound_id)
        if me is None or me.direction is not Direction.INBOUND or limit <= 0:
            return []
        mine = self._proven.get(me.id, frozenset())
        customer = self._owner(me)

        def visible(x: StoredMessage) -> bool:
            return (
                x.id != me.id
                and x.direction is Direction.INBOUND
                and self._owner(x) == customer
                and bool(
                    self._proven.get(x.id, frozenset()) & mine
                    or (
                        x.conversation_id == me.conversation_id
                        and (whole_conversation or self._senders.get(x.id, frozenset()) & mine)
                    )
                )
            )

        seen = {m.id for m in self._all_messages() if visible(m)}
        shown = [
            m
            for m in self._ordered(self._all_messages())
            if m.id in seen or self._answered(m) in seen
        ]
        return [self._history_item(m) for m in shown[-limit:]]

    def _answered(self, message: StoredMessage) -> str | None:
        """The inbound message an outbound one answers."""
        return self._reply_of.get(message.id)
