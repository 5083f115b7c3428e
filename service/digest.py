"""The daily digest (`fte digest`, and once a day in the service): per channel, what came
in and went out, what the agent answered and handed over and why, the top issues, the
sentiment and its trend, reply latency, tokens and cost, the naive and the honest
resolution rate, and the queue. One UTC day per digest; stored as a `digest` report whose
JSON body is what `--format json` prints."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

import msgspec

from fte_core import resolution
from fte_core.chunking import section_slug, slugify
from fte_core.models import Author, Channel, Direction, StoredMessage
from fte_core.ports import CustomerMessage, QueueFigures, ReportQueries
from fte_core.resolution import ResolutionFigures
from service.reports import ChannelFigures, figures

TREND_DAYS = 7
TOP = 5


class Count(msgspec.Struct, frozen=True):
    name: str
    conversations: int


class DayPoint(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    messages_in: int
    average_sentiment: float | None


class ChannelDigest(msgspec.Struct, frozen=True, kw_only=True):
    channel: Channel
    traffic: ChannelFigures  # volume, escalations by reason, latency, sentiment, cost
    answered: int  # messages the agent answered itself
    handed_over: int  # messages escalated to a person, or held for the person who has them
    top_tags: tuple[Count, ...]
    top_sections: tuple[Count, ...]  # knowledge-base sections the answers cited
    sentiment_change: float | None  # the day's average minus the previous days' average
    sentiment_trend: tuple[DayPoint, ...]  # the last TREND_DAYS days, the digest's day last


class Digest(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    channels: tuple[ChannelDigest, ...]
    queue: QueueFigures
    resolution_window_hours: float = resolution.RECONTACT_WINDOW.total_seconds() / 3600

    @property
    def title(self) -> str:
        return f"Daily digest {self.date.isoformat()}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


_HEADING = re.compile(r"^#{2,3}\s+(.+?)\s*#*\s*$", re.M)


def section_titles(markdown: str) -> dict[str, str]:
    """Slug -> heading, so the digest names sections as the knowledge base does."""
    return {slugify(h): h for h in _HEADING.findall(markdown)}


def _in(messages: Sequence[StoredMessage], start: datetime, end: datetime) -> list[StoredMessage]:
    return [m for m in messages if start <= m.created_at < end]


def _decided(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The messages carrying a decision: agent replies, and holds recorded on the inbound."""
    return [
        m
        for m in messages
        if m.record is not None and (m.author is Author.AGENT or m.record.action == "hold")
    ]


def _top(pairs: Sequence[tuple[str, str]], limit: int = TOP) -> tuple[Count, ...]:
    """(conversation, name) pairs counted once per conversation, most frequent first."""
    counted = Counter(name for _, name in set(pairs))
    ordered = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return tuple(Count(name, n) for name, n in ordered)


def _average(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _trend(messages: Sequence[StoredMessage], channel: Channel, day: date) -> tuple[DayPoint, ...]:
    points = []
    for back in range(TREND_DAYS - 1, -1, -1):
        start, end = day_bounds(day - timedelta(days=back))
        mine = [m for m in _in(messages, start, end) if m.channel is channel]
        sentiments = [m.record.sentiment for m in _decided(mine) if m.record is not None]
        points.append(
            DayPoint(
                date=start.date(),
                messages_in=sum(1 for m in mine if m.direction is Direction.INBOUND),
                average_sentiment=_average(sentiments),
            )
        )
    return tuple(points)


def _change(trend: Sequence[DayPoint]) -> float | None:
    today = trend[-1].average_sentiment
    before = [p.average_sentiment for p in trend[:-1] if p.average_sentiment is not None]
    if today is None or not before:
        return None
    return round(today - statistics.fmean(before), 4)


def channel_digest(
    channel: Channel,
    day_messages: Sequence[StoredMessage],
    all_messages: Sequence[StoredMessage],
    day: date,
    outcome: ResolutionFigures,
    sections: Mapping[str, str],
) -> ChannelDigest:
    mine = [m for m in day_messages if m.channel is channel]
    records = [m.record for m in _decided(mine) if m.record is not None]
    conversation_of = {r.message_id: m.conversation_id for m in mine if (r := m.record)}
    tags = [(conversation_of[r.message_id], t) for r in records for t in r.input_decision.tags]
    cited = [
        (conversation_of[r.message_id], sections.get(section_slug(p), section_slug(p)))
        for r in records
        if r.action == "answer"
        for p in r.passage_ids
    ]
    trend = _trend(all_messages, channel, day)
    return ChannelDigest(
        channel=channel,
        traffic=figures(channel, mine, outcome),
        answered=sum(1 for r in records if r.action == "answer"),
        handed_over=sum(1 for r in records if r.action in ("escalate", "hold")),
        top_tags=_top(tags),
        top_sections=_top(cited),
        sentiment_change=_change(trend),
        sentiment_trend=trend,
    )


async def build_digest(
    queries: ReportQueries,
    day: date,
    now: datetime,
    sections: Mapping[str, str] | None = None,
) -> Digest:
    """The digest of `day` (UTC) as known at `now`: re-contacts up to 72 hours after the
    day count, and answers whose 72 hours have not passed yet are reported as pending."""
    start, end = day_bounds(day)
    first = start - timedelta(days=TREND_DAYS - 1)
    horizon = max(end, min(now, end + resolution.RECONTACT_WINDOW))
    loaded: list[CustomerMessage] = await queries.customer_messages(first, horizon)
    everything = [i.message for i in loaded]
    in_day = _in(everything, start, end)
    outcomes = resolution.by_channel(
        resolution.outcomes([i for i in loaded if i.message.created_at >= start], start, end, now)
    )
    return Digest(
        date=day,
        period_start=start,
        period_end=end,
        generated_at=now,
        channels=tuple(
            channel_digest(c, in_day, everything, day, outcomes[c], sections or {}) for c in Channel
        ),
        queue=await queries.queue_figures(start, end),
    )


def encode(digest: Digest) -> bytes:
    return msgspec.json.encode(digest)
