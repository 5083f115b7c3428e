"""The service's monitor: a background task in the app's lifespan that reads the
operations figures from the database every few seconds, judges the alerts, and exports
both on `/metrics` (a Prometheus collector over the latest snapshot).

Scraping never queries the database: it reads the snapshot the task took last, so a
scrape costs the same however often Prometheus asks. The metric names are the ones
k8s/base/prometheus-rules.yaml alerts on (tests/unit/test_prometheus_rules.py checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fte_core.clock import Clock, utc_now
from fte_core.errors import FteError
from fte_core.monitoring import (
    RULE_BUCKETS,
    Alert,
    Snapshot,
    Thresholds,
    active_alerts,
    idle_seconds,
)
from fte_core.ports import OperationsReader
from service.settings import Settings

log = logging.getLogger(__name__)


class Monitor:
    """The latest snapshot and its alerts; `refresh` takes a new one."""

    def __init__(
        self,
        reader: OperationsReader,
        *,
        window: timedelta,
        limits: Thresholds,
        interval: float = 20.0,
        clock: Clock = utc_now,
    ) -> None:
        self.reader = reader
        self.window = window
        self.limits = limits
        self.interval = interval
        self.latest: Snapshot | None = None
        self.alerts: list[Alert] = []
        self.failures = 0
        self._clock = clock

    @classmethod
    def for_settings(cls, reader: OperationsReader, settings: Settings) -> Monitor:
        return cls(
            reader,
            window=timedelta(minutes=settings.alert_window_minutes),
            limits=Thresholds(idle_seconds=settings.alert_idle_minutes * 60),
            interval=settings.monitor_interval,
        )

    async def refresh(self) -> Snapshot:
        snapshot = await self.reader.snapshot(self._clock(), self.window)
        self.latest, self.alerts = snapshot, active_alerts(snapshot, self.limits)
        return snapshot

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until `stop`; a database outage keeps the last figures and is logged
        (and counted in fte_monitor_failures_total), never ends the loop."""
        while not stop.is_set():
            try:
                await self.refresh()
            except FteError as exc:
                self.failures += 1
                log.warning("monitor: could not read the operations figures: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    def collect(self) -> Iterator[Metric]:
        """The Prometheus collector protocol: metric families from the latest snapshot."""
        failures = CounterMetricFamily(
            "fte_monitor_failures", "Refreshes of the operations figures that failed"
        )
        failures.add_metric([], self.failures)
        yield failures
        limit = GaugeMetricFamily(
            "fte_channel_idle_limit_seconds", "A channel quiet for longer than this alerts"
        )
        limit.add_metric([], self.limits.idle_seconds)
        yield limit
        if self.latest is not None:
            yield from _families(self.latest)
            yield _alert_family(self.alerts)


def _families(s: Snapshot) -> Iterator[Metric]:
    taken = GaugeMetricFamily(
        "fte_monitor_snapshot_timestamp_seconds", "When these figures were read (Unix time)"
    )
    taken.add_metric([], s.taken_at.timestamp())
    yield taken
    yield from _totals(s)
    yield from _window(s)
    depth = GaugeMetricFamily("fte_queue_depth", "Events waiting in the queue", labels=["topic"])
    lag = GaugeMetricFamily(
        "fte_queue_lag_seconds", "Age of the oldest event waiting", labels=["topic"]
    )
    for queue in s.queues:
        depth.add_metric([queue.topic], queue.depth)
        lag.add_metric([queue.topic], queue.oldest_seconds)
    yield depth
    yield lag
    dead = GaugeMetricFamily("fte_dead_letters", "Events that failed every retry")
    dead.add_metric([], s.dead_letters)
    yield dead
    disagreements = CounterMetricFamily(
        "fte_policy_disagreements",
        "Decisions on which durable_rules and the reference evaluator disagreed",
    )
    disagreements.add_metric([], s.disagreements)
    yield disagreements


def _totals(s: Snapshot) -> Iterator[Metric]:
    messages = CounterMetricFamily(
        "fte_messages", "Messages stored", labels=["channel", "direction"]
    )
    for m in s.messages:
        messages.add_metric([m.channel.value, m.direction.value], m.count)
    yield messages
    escalations = CounterMetricFamily(
        "fte_escalations", "Hand-overs to a person, by first reason", labels=["channel", "reason"]
    )
    for e in s.escalations:
        escalations.add_metric([e.channel.value, e.reason], e.count)
    yield escalations
    tokens = CounterMetricFamily(
        "fte_llm_tokens", "Model tokens spent on replies", labels=["channel", "kind"]
    )
    cost = CounterMetricFamily("fte_llm_cost_usd", "Model cost of replies", labels=["channel"])
    for u in s.usage:
        tokens.add_metric([u.channel.value, "prompt"], u.prompt_tokens)
        tokens.add_metric([u.channel.value, "completion"], u.completion_tokens)
        cost.add_metric([u.channel.value], u.cost_usd)
    yield tokens
    yield cost
    rules = HistogramMetricFamily(
        "fte_rule_evaluation_seconds", "Time to evaluate a rule stage", labels=["stage"]
    )
    for t in s.rule_timings:
        buckets = [(repr(b), n) for b, n in zip(RULE_BUCKETS, t.buckets, strict=True)]
        rules.add_metric([t.stage], [*buckets, ("+Inf", t.count)], t.sum_seconds)
    yield rules


def _window(s: Snapshot) -> Iterator[Metric]:
    p95 = GaugeMetricFamily(
        "fte_reply_latency_p95_seconds",
        "95th percentile of customer message to agent reply, over the alert window",
        labels=["channel"],
    )
    rate = GaugeMetricFamily(
        "fte_escalation_rate", "Share of agent replies that handed over", labels=["channel"]
    )
    replies = GaugeMetricFamily(
        "fte_replies_in_window", "Agent replies over the alert window", labels=["channel"]
    )
    idle = GaugeMetricFamily(
        "fte_channel_idle_seconds", "Seconds since the last customer message", labels=["channel"]
    )
    for w in s.channels:
        label = [w.channel.value]
        if w.latency_p95_seconds is not None:
            p95.add_metric(label, w.latency_p95_seconds)
        rate.add_metric(label, w.escalation_rate)
        replies.add_metric(label, w.replies)
        quiet = idle_seconds(w, s.taken_at)
        if quiet is not None:
            idle.add_metric(label, quiet)
    yield from (p95, rate, replies, idle)


def _alert_family(alerts: list[Alert]) -> Metric:
    family = GaugeMetricFamily(
        "fte_alert_active", "Alerts the service judges active", labels=["alert", "channel"]
    )
    for alert in alerts:
        family.add_metric([alert.name, alert.channel.value if alert.channel else ""], 1)
    return family


@contextlib.asynccontextmanager
async def monitoring(monitor: Monitor, registry: CollectorRegistry) -> AsyncIterator[Monitor]:
    """Export the monitor on `registry` and refresh it in the background meanwhile."""
    registry.register(monitor)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    try:
        yield monitor
    finally:
        stop.set()
        await task
        registry.unregister(monitor)
