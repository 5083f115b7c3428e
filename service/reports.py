"""Per-channel figures for operators (`GET /api/v1/metrics/channels`), from the stored
messages and their decision records."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timedelta

import msgspec

from fte_core import resolution
from fte_core.clock import utc_now
from fte_core.models import Author, Channel, Direction, StoredMessage
from fte_core.resolution import ResolutionFigures
from service.bootstrap import Runtime


class ChannelFigures(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    messages_in: int
    messages_out: int
    conversations: int
    escalations: int
    escalation_rate: float  # escalations / decided inbound messages
    escalations_by_reason: dict[str, int]
    held: int
    reply_latency_ms_p50: float | None
    reply_latency_ms_p95: float | None
    average_sentiment: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    # conversations answered without hand-over / all (naive), and answered ones the
    # customer confirmed or did not come back about within 72 h (honest; fte_core.resolution)
    naive_resolution_rate: float | None = None
    honest_resolution_rate: float | None = None
    resolution: ResolutionFigures | None = None


class ChannelReport(msgspec.Struct, frozen=True, kw_only=True):
    hours: float
    channels: tuple[ChannelFigures, ...]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 3)


def figures(
    channel: Channel, messages: list[StoredMessage], outcome: ResolutionFigures | None = None
) -> ChannelFigures:
    mine = [m for m in messages if m.channel is channel]
    inbound = [m for m in mine if m.direction is Direction.INBOUND]
    replies = [m for m in mine if m.author is Author.AGENT and m.record is not None]
    records = [m.record for m in replies if m.record is not None]
    records += [m.record for m in inbound if m.record is not None]  # holds without a reply
    escalated = [r for r in records if r.action == "escalate"]
    latencies = [sum(r.latency_ms.values()) for r in records]
    return ChannelFigures(
        channel=channel,
        messages_in=len(inbound),
        messages_out=sum(1 for m in mine if m.direction is Direction.OUTBOUND),
        conversations=len({m.conversation_id for m in mine}),
        escalations=len(escalated),
        escalation_rate=round(len(escalated) / len(records), 4) if records else 0.0,
        escalations_by_reason=dict(Counter(r for e in escalated for r in e.reasons[:1])),
        held=sum(1 for r in records if r.action == "hold"),
        reply_latency_ms_p50=_percentile(latencies, 0.5),
        reply_latency_ms_p95=_percentile(latencies, 0.95),
        average_sentiment=round(statistics.fmean(r.sentiment for r in records), 4)
        if records
        else None,
        prompt_tokens=sum(r.usage.prompt_tokens for r in records),
        completion_tokens=sum(r.usage.completion_tokens for r in records),
        cost_usd=round(sum(r.usage.cost_usd for r in records), 6),
        naive_resolution_rate=outcome.naive_rate if outcome else None,
        honest_resolution_rate=outcome.honest_rate if outcome else None,
        resolution=outcome,
    )


async def channel_report(runtime: Runtime, period: timedelta) -> ChannelReport:
    now = utc_now()
    since = now - period
    loaded = await runtime.queries.customer_messages(since, now + _LATER)
    messages = [i.message for i in loaded]
    outcomes = resolution.by_channel(resolution.outcomes(loaded, since, now, now))
    return ChannelReport(
        hours=period.total_seconds() / 3600,
        channels=tuple(figures(c, messages, outcomes[c]) for c in Channel),
    )


_LATER = timedelta(minutes=1)  # the period includes messages stored as it is computed
