"""Outbound delivery: a stored reply, part by part, through its channel's sender.

Replies (the agent's and the operators') are stored with an `fte.outbound` event in one
transaction; a worker hands each event to `Outbound.deliver`. Each part's provider id is
recorded in the DeliveryLedger the moment the provider accepts it, before the next part
is sent and before the reply is marked sent: a retry after an error or a crash skips the
recorded parts, so the customer never gets a part twice. Errors worth retrying go back to
the bus (backoff, then dead letter); a refusal for good (DeliveryRejected) or the last
attempt is recorded on the reply as `undelivered` and the ticket goes to a person.

Message-level statuses: queued -> sending (one deliverer holds it) -> sent -> delivered ->
read, following the least advanced part; `failed` means our last attempt failed and will
be retried; `undelivered` means given up (the provider refused or reported it failed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from fte_core.clock import Clock, utc_now
from fte_core.errors import DeliveryError, DeliveryRejected, InProgress, InvalidTransition, NotFound
from fte_core.models import (
    Channel,
    DeliveryStatus,
    Direction,
    Owner,
    Priority,
    Reply,
    StoredMessage,
    TicketStatus,
)
from fte_core.ports import (
    ChannelSender,
    CrmStore,
    DeliveryLedger,
    DeliveryTarget,
    EventBus,
)
from fte_core.tools import DELIVERY_LEASE, escalate_to_human, reply_parts

log = logging.getLogger(__name__)

# the reason a ticket is handed to a person when its reply cannot be delivered
DELIVERY_FAILED = "delivery_failed"

_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
}
_GAVE_UP = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED})
# a reply in one of these went out: status reports move it; before that the deliverer does
WENT_OUT = frozenset({DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ})
_PENDING = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.FAILED})


def advance(current: DeliveryStatus, reported: DeliveryStatus) -> DeliveryStatus:
    """A part's status only moves forward (reports arrive out of order); a failure the
    provider reported is final."""
    if current in _GAVE_UP:
        return current
    if reported in _GAVE_UP:
        return reported
    return reported if _RANK.get(reported, 0) > _RANK.get(current, 0) else current


def aggregate(statuses: Iterable[DeliveryStatus]) -> DeliveryStatus:
    """A sent reply's status from its parts: undelivered if the provider failed any part,
    else the least advanced part (at least sent)."""
    ranks = []
    for status in statuses:
        if status in _GAVE_UP:
            return DeliveryStatus.UNDELIVERED
        ranks.append(_RANK.get(status, 0))
    least = min(ranks, default=_RANK[DeliveryStatus.SENT])
    return next(s for s, r in _RANK.items() if r == max(least, _RANK[DeliveryStatus.SENT]))


async def send_parts(
    ledger: DeliveryLedger,
    stored: StoredMessage,
    sender: ChannelSender,
    target: DeliveryTarget,
) -> DeliveryStatus:
    """Send the parts not yet accepted, in order, recording each provider id at once; the
    caller holds the reply (CrmStore.claim_delivery). A failure is recorded and raised."""
    state = await ledger.state(stored.id)
    accepted = {p.index for p in state.parts} if state is not None else set()
    for index, text in enumerate(reply_parts(stored)):
        if index in accepted:
            continue  # the provider has it: a retry never sends it again
        try:
            result = await sender.send(Reply(channel=stored.channel, parts=(text,)), target)
        except DeliveryRejected as exc:
            await ledger.record_failure(stored.id, DeliveryStatus.UNDELIVERED, describe(exc))
            raise
        except DeliveryError as exc:
            await ledger.record_failure(stored.id, DeliveryStatus.FAILED, describe(exc))
            raise
        ids = result.provider_message_ids
        await ledger.record_part(
            stored.id, stored.channel, index, ids[0] if ids else f"{stored.id}:{index}"
        )
    return await ledger.settle(stored.id)


def describe(exc: DeliveryError) -> str:
    code = exc.code if isinstance(exc, DeliveryRejected) else None
    return f"{code}: {exc}" if code else str(exc)


@dataclass(slots=True)
class Outbound:
    """What a worker does with an `fte.outbound` event, and with a provider's status
    report: routes by channel to the configured senders."""

    store: CrmStore
    ledger: DeliveryLedger
    senders: Mapping[Channel, ChannelSender]
    bus: EventBus
    clock: Clock = utc_now
    lease: timedelta = DELIVERY_LEASE

    async def deliver(self, message_id: str, *, last_attempt: bool = False) -> DeliveryStatus:
        """Deliver a stored reply once. Raises DeliveryError to be retried later, and
        InProgress while another deliverer holds the reply. On the last attempt a failure
        is given up: recorded as undelivered and the ticket handed to a person."""
        stored = await self.store.get_message(message_id)
        if stored is None or stored.direction is not Direction.OUTBOUND:
            raise NotFound(f"outbound message {message_id!r}")
        if stored.delivery_status not in _PENDING:
            return stored.delivery_status  # a redelivered event: it went out already
        if stored.channel is Channel.WEB_FORM:
            # no provider: the customer reads the reply on the ticket's status page
            await self.store.set_delivery_status(stored.id, DeliveryStatus.DELIVERED)
            return DeliveryStatus.DELIVERED
        sender = self.senders.get(stored.channel)
        if sender is None:
            log.warning(
                "reply %s stays queued: the %s channel is not configured",
                stored.id,
                stored.channel.value,
            )
            return stored.delivery_status
        target = await self.store.reply_target(stored.id)
        if target is None:
            await self._give_up(stored, "no address to deliver the reply to")
            return DeliveryStatus.UNDELIVERED
        if not await self.store.claim_delivery(stored.id, self.clock(), self.lease):
            current = await self.store.get_message(stored.id)
            if current is not None and current.delivery_status not in _PENDING:
                return current.delivery_status
            raise InProgress(f"reply {stored.id} is being sent by another deliverer")
        try:
            return await send_parts(self.ledger, stored, sender, target)
        except DeliveryRejected as exc:
            await self._hand_over(stored, describe(exc))
            return DeliveryStatus.UNDELIVERED
        except DeliveryError as exc:
            if not last_attempt:
                raise
            await self._give_up(stored, f"gave up after retries: {describe(exc)}")
            return DeliveryStatus.UNDELIVERED

    async def report(
        self,
        channel: Channel,
        provider_message_id: str,
        status: DeliveryStatus,
        error: str | None = None,
    ) -> DeliveryStatus | None:
        """A provider's status report on one part; a part the provider failed hands the
        ticket to a person. None: not one of our messages."""
        state = await self.ledger.part_status(channel, provider_message_id, status, error)
        if state is None:
            return None
        if status in _GAVE_UP:
            stored = await self.store.get_message(state.message_id)
            if stored is not None:
                await self._hand_over(stored, f"provider reported {status.value}: {error or '-'}")
        return state.status

    async def _give_up(self, stored: StoredMessage, error: str) -> None:
        await self.ledger.record_failure(stored.id, DeliveryStatus.UNDELIVERED, error)
        await self._hand_over(stored, error)

    async def _hand_over(self, stored: StoredMessage, error: str) -> None:
        """The customer did not get the reply: a person takes the ticket (once)."""
        conversation = await self.store.get_conversation(stored.conversation_id)
        ticket = await self.store.get_ticket(conversation.ticket_number) if conversation else None
        if ticket is None:
            log.error("reply %s undelivered (%s) and its ticket is gone", stored.id, error)
            return
        log.warning("reply %s on %s undelivered: %s", stored.id, ticket.number, error)
        if ticket.status is TicketStatus.ESCALATED and ticket.owner is Owner.HUMAN:
            return
        try:
            await escalate_to_human(
                self.store,
                self.bus,
                ticket.number,
                (DELIVERY_FAILED,),
                Priority.HIGH,
                message_id=stored.id,
                channel=stored.channel,
                now=self.clock(),
            )
        except InvalidTransition:
            # a resolved or closed ticket keeps its status; a person still owns it
            await self.store.update_ticket(ticket.number, owner=Owner.HUMAN)
