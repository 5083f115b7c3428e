"""Alerts judged on a snapshot (fte_core.monitoring.active_alerts): each threshold, just
under and just over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fte_core.models import Channel
from fte_core.monitoring import ChannelWindow, Snapshot, Thresholds, active_alerts, nearest_rank

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(idle_seconds=3600)


def window(**changes: object) -> ChannelWindow:
    values: dict[str, object] = {
        "channel": Channel.EMAIL,
        "replies": 10,
        "escalations": 0,
        "latency_p95_seconds": 1.0,
        "last_inbound_at": NOW - timedelta(minutes=5),
    }
    values.update(changes)
    return ChannelWindow(**values)  # type: ignore[arg-type]


def names(**snapshot: object) -> list[str]:
    taken = Snapshot(taken_at=NOW, window_seconds=3600, **snapshot)  # type: ignore[arg-type]
    return [a.name for a in active_alerts(taken, LIMITS)]


def test_a_quiet_healthy_service_raises_nothing() -> None:
    assert names(channels=(window(),)) == []
    assert names() == []


def test_latency_over_three_seconds() -> None:
    assert names(channels=(window(latency_p95_seconds=3.0),)) == []
    assert names(channels=(window(latency_p95_seconds=3.01),)) == ["FteReplyLatencyHigh"]
    assert names(channels=(window(latency_p95_seconds=None, replies=0),)) == []


def test_escalation_rate_over_a_quarter_with_enough_replies() -> None:
    assert names(channels=(window(replies=8, escalations=2),)) == []  # 25 %: not over
    assert names(channels=(window(replies=8, escalations=3),)) == ["FteEscalationRateHigh"]
    assert names(channels=(window(replies=3, escalations=3),)) == []  # too few to judge


def test_any_dead_letter_and_recent_disagreements() -> None:
    assert names(dead_letters=1) == ["FteDeadLetters"]
    assert names(disagreements=4) == []  # old ones: the alert is about the window
    assert names(disagreements=4, recent_disagreements=1) == ["FtePolicyDisagreement"]


def test_a_channel_quiet_longer_than_the_limit() -> None:
    assert names(channels=(window(last_inbound_at=NOW - timedelta(minutes=59)),)) == []
    quiet = window(last_inbound_at=NOW - timedelta(minutes=61))
    assert names(channels=(quiet,)) == ["FteChannelIdle"]
    assert names(channels=(window(last_inbound_at=None, replies=0),)) == []  # never used


def test_nearest_rank_matches_percentile_disc() -> None:
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([4.0], 0.95) == 4.0
    assert nearest_rank([float(v) for v in range(1, 21)], 0.95) == 19.0
    assert nearest_rank([float(v) for v in range(1, 101)], 0.95) == 95.0
