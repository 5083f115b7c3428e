"""Operations figures (what `/metrics` exports) and the alerts computed from them.

The figures come from the stored messages, the queue and the dead letters, never from one
process's memory, so every API replica reports the same numbers and a restart loses
nothing. An `OperationsReader` (fte_core.ports) takes a `Snapshot`; `active_alerts` judges
it against the thresholds the seeds name (reply latency p95 over 3 s, escalation rate over
25 %, any dead letter, a channel gone quiet, the two rule evaluators disagreeing).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import msgspec

from fte_core.models import Author, Channel, Direction, StoredMessage

# Upper bounds (seconds) of the rule-evaluation-time histogram: rules take microseconds to
# a few milliseconds; the last buckets catch a stall.
RULE_BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025)
RULE_STAGES = ("input_rules", "output_rules")
DISAGREEMENT = "durable_rules fired"  # how the engine's error on a disagreement starts


class MessageCount(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    direction: Direction
    count: int


class ReasonCount(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    reason: str
    count: int


class ChannelUsage(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class RuleTiming(msgspec.Struct, frozen=True, kw_only=True):
    """A histogram of one rule stage's evaluation time: `buckets[i]` counts evaluations at
    or under RULE_BUCKETS[i] seconds (cumulative, as Prometheus wants)."""

    stage: str
    buckets: tuple[int, ...]
    count: int
    sum_seconds: float


class QueueDepth(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    depth: int  # events not yet handed out (or, with Kafka, not yet relayed)
    oldest_seconds: float  # age of the oldest of them: the queue's lag


class ChannelWindow(msgspec.Struct, frozen=True, kw_only=True):
    """One channel over the alert window."""

    channel: Channel
    replies: int  # the agent's replies: answers and hand-over messages
    escalations: int  # hand-overs among them
    latency_p95_seconds: float | None  # customer message stored -> agent reply stored
    last_inbound_at: datetime | None  # ever, not only in the window

    @property
    def escalation_rate(self) -> float:
        return self.escalations / self.replies if self.replies else 0.0


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    taken_at: datetime
    window_seconds: float
    messages: tuple[MessageCount, ...] = ()  # totals since the beginning
    escalations: tuple[ReasonCount, ...] = ()  # totals, by first (most urgent) reason
    usage: tuple[ChannelUsage, ...] = ()  # totals
    rule_timings: tuple[RuleTiming, ...] = ()  # totals
    queues: tuple[QueueDepth, ...] = ()
    dead_letters: int = 0
    disagreements: int = 0  # decisions on which durable_rules and the reference differed
    recent_disagreements: int = 0  # of them, within the window
    channels: tuple[ChannelWindow, ...] = ()


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    latency_p95_seconds: float = 3.0
    escalation_rate: float = 0.25
    idle_seconds: float = 7200.0
    # an escalation rate over a handful of replies says nothing; judge from this many
    min_replies: int = 4


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the Prometheus alert it mirrors (k8s/base/prometheus-rules.yaml)
    channel: Channel | None
    summary: str  # one sentence for the inbox banner


def active_alerts(snapshot: Snapshot, limits: Thresholds) -> list[Alert]:
    """The alerts the snapshot raises, most serious first."""
    found: list[Alert] = []
    if snapshot.dead_letters:
        found.append(
            Alert(
                name="FteDeadLetters",
                channel=None,
                summary=f"{snapshot.dead_letters} event(s) failed every retry and were "
                "dead-lettered: a customer message may be unanswered.",
            )
        )
    if snapshot.recent_disagreements:
        minutes = round(snapshot.window_seconds / 60)
        found.append(
            Alert(
                name="FtePolicyDisagreement",
                channel=None,
                summary=f"The two rule evaluators disagreed on {snapshot.recent_disagreements} "
                f"message(s) over the last {minutes} min; each was escalated. Check the rules.",
            )
        )
    for window in snapshot.channels:
        found.extend(_channel_alerts(window, snapshot, limits))
    return found


def _channel_alerts(window: ChannelWindow, snapshot: Snapshot, limits: Thresholds) -> list[Alert]:
    name = window.channel.value.replace("_", " ")
    minutes = round(snapshot.window_seconds / 60)
    found: list[Alert] = []
    p95 = window.latency_p95_seconds
    if p95 is not None and p95 > limits.latency_p95_seconds:
        found.append(
            Alert(
                name="FteReplyLatencyHigh",
                channel=window.channel,
                summary=f"{name}: 95 % of replies took up to {p95:.1f} s over the last "
                f"{minutes} min (limit {limits.latency_p95_seconds:g} s).",
            )
        )
    rate = window.escalation_rate
    if window.replies >= limits.min_replies and rate > limits.escalation_rate:
        found.append(
            Alert(
                name="FteEscalationRateHigh",
                channel=window.channel,
                summary=f"{name}: {rate:.0%} of {window.replies} replies were handed to a "
                f"person over the last {minutes} min (limit {limits.escalation_rate:.0%}).",
            )
        )
    idle = idle_seconds(window, snapshot.taken_at)
    if idle is not None and idle > limits.idle_seconds:
        found.append(
            Alert(
                name="FteChannelIdle",
                channel=window.channel,
                summary=f"{name}: no customer message for {_duration(idle)} "
                f"(limit {_duration(limits.idle_seconds)}); is the channel still connected?",
            )
        )
    return found


def idle_seconds(window: ChannelWindow, now: datetime) -> float | None:
    """Seconds since the channel's last customer message; None if it never had one (a
    channel that was never used is not one that stopped)."""
    if window.last_inbound_at is None:
        return None
    return max(0.0, (now - window.last_inbound_at).total_seconds())


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{round(seconds / 60)} min"


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank (PostgreSQL's percentile_disc computes the same)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def rule_timing(stage: str, seconds: Iterable[float]) -> RuleTiming:
    values = list(seconds)
    return RuleTiming(
        stage=stage,
        buckets=tuple(sum(1 for v in values if v <= bound) for bound in RULE_BUCKETS),
        count=len(values),
        sum_seconds=sum(values),
    )


def is_disagreement(message: StoredMessage) -> bool:
    record = message.record
    if record is None:
        return False
    decisions = (record.input_decision, record.output_decision)
    return any(d is not None and (d.error or "").startswith(DISAGREEMENT) for d in decisions)


def snapshot_of(
    messages: Sequence[StoredMessage],
    now: datetime,
    window: timedelta,
    *,
    queues: tuple[QueueDepth, ...] = (),
    dead_letters: int = 0,
) -> Snapshot:
    """The snapshot computed from every stored message (the in-memory reader; the
    PostgreSQL reader computes the same with SQL)."""
    replies = [m for m in messages if m.author is Author.AGENT and m.record is not None]
    escalated = [m for m in replies if m.record is not None and m.record.action == "escalate"]
    return Snapshot(
        taken_at=now,
        window_seconds=window.total_seconds(),
        messages=tuple(
            MessageCount(channel=c, direction=d, count=n)
            for (c, d), n in sorted(Counter((m.channel, m.direction) for m in messages).items())
        ),
        escalations=tuple(
            ReasonCount(channel=c, reason=r, count=n)
            for (c, r), n in sorted(Counter((m.channel, _reason(m)) for m in escalated).items())
        ),
        usage=_usage(replies),
        rule_timings=tuple(
            rule_timing(stage, _stage_seconds(replies, stage)) for stage in RULE_STAGES
        ),
        queues=queues,
        dead_letters=dead_letters,
        disagreements=sum(1 for m in messages if is_disagreement(m)),
        recent_disagreements=sum(
            1 for m in messages if m.created_at >= now - window and is_disagreement(m)
        ),
        channels=_windows(messages, replies, now - window),
    )


def _reason(message: StoredMessage) -> str:
    record = message.record
    if record is None:
        return "unknown"
    return (record.reasons[0] if record.reasons else record.escalation_reason) or "unknown"


def _usage(replies: Sequence[StoredMessage]) -> tuple[ChannelUsage, ...]:
    found: list[ChannelUsage] = []
    for channel in sorted({m.channel for m in replies}):
        mine = [m.record.usage for m in replies if m.channel is channel and m.record is not None]
        found.append(
            ChannelUsage(
                channel=channel,
                prompt_tokens=sum(u.prompt_tokens for u in mine),
                completion_tokens=sum(u.completion_tokens for u in mine),
                cost_usd=sum(u.cost_usd for u in mine),
            )
        )
    return tuple(found)


def _stage_seconds(replies: Sequence[StoredMessage], stage: str) -> list[float]:
    return [
        m.record.latency_ms[stage] / 1000
        for m in replies
        if m.record is not None and stage in m.record.latency_ms
    ]


def _windows(
    messages: Sequence[StoredMessage], replies: Sequence[StoredMessage], since: datetime
) -> tuple[ChannelWindow, ...]:
    received = {m.id: m.created_at for m in messages if m.direction is Direction.INBOUND}
    found: list[ChannelWindow] = []
    for channel in Channel:
        recent = [m for m in replies if m.channel is channel and m.created_at >= since]
        waits = [
            max(0.0, (m.created_at - received[m.record.message_id]).total_seconds())
            for m in recent
            if m.record is not None and m.record.message_id in received
        ]
        inbound = [
            m.created_at
            for m in messages
            if m.channel is channel and m.direction is Direction.INBOUND
        ]
        found.append(
            ChannelWindow(
                channel=channel,
                replies=len(recent),
                escalations=sum(1 for m in recent if m.record and m.record.action == "escalate"),
                latency_p95_seconds=nearest_rank(waits, 0.95),
                last_inbound_at=max(inbound) if inbound else None,
            )
        )
    return tuple(found)
