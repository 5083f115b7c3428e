"""Events the agent publishes (SPEC 7). Topics are constants; payloads are Structs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from fte_core.models import Channel, InboundMessage, Priority

INBOUND = "fte.inbound"
OUTBOUND = "fte.outbound"
ESCALATIONS = "fte.escalations"
METRICS = "fte.metrics"
DLQ = "fte.dlq"
TOPICS = (INBOUND, OUTBOUND, ESCALATIONS, METRICS, DLQ)


class InboundEvent(msgspec.Struct, frozen=True, kw_only=True, tag="inbound"):
    message: InboundMessage


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
    action: str  # answer | escalate
    escalation_reason: str | None
    sentiment: float
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    responder: str
    at: datetime
