"""Events the agent publishes (SPEC 7). Topics are constants; payloads are Structs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from fte_core.errors import ValidationError
from fte_core.models import Channel, Priority, ReplyAction

INBOUND = "fte.inbound"
OUTBOUND = "fte.outbound"
ESCALATIONS = "fte.escalations"
METRICS = "fte.metrics"
DLQ = "fte.dlq"
TOPICS = (INBOUND, OUTBOUND, ESCALATIONS, METRICS, DLQ)


class InboundEvent(msgspec.Struct, frozen=True, kw_only=True, tag="inbound"):
    """An inbound message stored at intake, to be processed by a worker (`fte.inbound`,
    keyed by customer identity). It names the stored row rather than carrying the text:
    the store is the one source of truth, and a redelivery finds the same row."""

    message_id: str  # the stored inbound message
    channel: Channel
    provider_message_id: str


class ReceivedEvent(msgspec.Struct, frozen=True, kw_only=True, tag="received"):
    """A message acknowledged at intake before identity and thread were decided (the web
    form's fast path, SPEC 4 step 1): the worker takes in the kept receipt, which opens
    ticket `ticket_number`. Once taken in, the receipt is gone and the stored message is
    found by its provider id, so a redelivery is answered from the store."""

    ticket_number: str
    channel: Channel
    provider_message_id: str


class OutboundEvent(msgspec.Struct, frozen=True, kw_only=True, tag="outbound"):
    """A stored reply to deliver through its channel's sender (`fte.outbound`)."""

    message_id: str  # the stored outbound message
    channel: Channel


class EscalationEvent(msgspec.Struct, frozen=True, kw_only=True, tag="escalation"):
    ticket_number: str
    customer_id: str
    conversation_id: str
    message_id: str
    channel: Channel
    reason: str
    reasons: tuple[str, ...]
    urgency: Priority
    at: datetime


class MetricsEvent(msgspec.Struct, frozen=True, kw_only=True, tag="metrics"):
    channel: Channel
    ticket_number: str
    action: ReplyAction
    escalation_reason: str | None
    sentiment: float
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    responder: str
    at: datetime


Event = InboundEvent | ReceivedEvent | OutboundEvent | EscalationEvent | MetricsEvent

_DECODER = msgspec.json.Decoder(Event)


def encode(event: msgspec.Struct) -> bytes:
    """The wire form every bus uses: JSON with the struct's tag, readable in any Kafka tool."""
    return msgspec.json.encode(event)


def decode(payload: bytes) -> Event:
    """Raises fte_core.errors.ValidationError naming `payload` for anything not an event."""
    try:
        return _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValidationError("payload", f"not an fte event: {exc}") from exc
