"""The Kafka consumer side: per-key lanes over partitions, manual commits, dead letters.

A partition is read in order, but its records are spread over per-key lanes: a key has at
most one delivery out, other keys of the same partition go ahead, so a failing (poison)
record only holds back its own customer, and only until it is dead-lettered. Retries wait
in memory with exponential backoff. A partition's offset is committed up to (excluding)
its oldest record without an outcome, only after the handler's work was stored (ack) or
the record went to the dead-letter topic: after a crash, everything from there on is
delivered again, and the idempotent handler skips what it already did.

Attempts are counted in memory: a record delivered again after a consumer crash starts at
attempt 1 (the PostgreSQL queue keeps its counter in the row).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from adapters.bus.kafka import ID_HEADER, KafkaBus, KafkaConfig
from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.errors import BusError
from fte_core.ports import Delivery

log = logging.getLogger(__name__)

Lane = tuple[str, str]  # (bus topic, key)


class _Record:
    __slots__ = ("attempts", "available_at", "delivery", "offset", "tp")

    def __init__(self, tp: TopicPartition, offset: int, delivery: Delivery) -> None:
        self.tp = tp
        self.offset = offset
        self.delivery = delivery
        self.attempts = 0
        self.available_at = 0.0


class _Offsets:
    """Offsets of one partition received but without an outcome yet, in order."""

    def __init__(self) -> None:
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.commit: int | None = None  # next offset to commit, once it moved
        self.dirty = False

    def finish(self, offset: int) -> None:
        self.done.add(offset)
        last: int | None = None
        while self.pending and self.pending[0] in self.done:
            last = self.pending.popleft()
            self.done.discard(last)
        if last is not None:
            self.commit = self.pending[0] if self.pending else last + 1
            self.dirty = True


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner._revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(str(tp) for tp in assigned))


class KafkaConsumer:
    def __init__(
        self,
        config: KafkaConfig,
        topics: Iterable[str],
        dead_letters: KafkaBus,
        *,
        retry: RetryPolicy | None = None,
        max_buffer: int = 2_000,
        commit_interval: float = 0.2,
    ) -> None:
        self.config = config
        self._topics = [config.topic(t) for t in topics]
        self._dlq = dead_letters
        self._retry = retry or RetryPolicy()
        self._max_buffer = max_buffer
        self._commit_interval = commit_interval
        self._consumer: Any = None  # aiokafka wants a running loop: made in start()
        self._lanes: dict[Lane, deque[_Record]] = {}
        self._due: list[tuple[float, int, Lane]] = []  # lane heads that may be handed out
        self._seq = itertools.count()
        self._out: dict[Lane, _Record] = {}
        self._offsets: dict[TopicPartition, _Offsets] = {}
        self._buffered = 0
        self._last_commit = 0.0
        self._started = False

    async def start(self) -> None:
        config = self.config
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            client_id=config.client_id,
            group_id=config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=max(100, config.session_timeout_ms // 5),
            request_timeout_ms=config.request_timeout_ms,
            fetch_max_wait_ms=config.fetch_max_wait_ms,
        )
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise BusError(f"cannot start the Kafka consumer at {self.config.bootstrap}") from exc
        self._started = True

    async def receive(self, limit: int, max_wait: float) -> list[Delivery]:
        deadline = time.monotonic() + max_wait
        while True:
            await self._maybe_commit()
            taken = self._take(limit)
            now = time.monotonic()
            if taken or now >= deadline:
                return taken
            wait = deadline - now
            if self._due:
                wait = min(wait, max(0.0, self._due[0][0] - now))
            await self._fetch(wait)

    async def ack(self, delivery: Delivery) -> None:
        record = self._finish(delivery)
        if record is not None:
            await self._maybe_commit()

    async def retry(self, delivery: Delivery, error: str) -> bool:
        lane = (delivery.topic, delivery.key)
        record = self._out.get(lane)
        if record is None or record.delivery is not delivery:
            return False  # its partition was revoked: the new owner delivers it again
        if self._retry.exhausted(record.attempts):
            try:
                await self._dead_letter(record, error)
            except BusError:
                self._back_off(lane, record)  # try the dead-letter topic again later
                raise
            self._finish(delivery)
            return True
        self._back_off(lane, record)
        return False

    def _back_off(self, lane: Lane, record: _Record) -> None:
        del self._out[lane]
        record.available_at = time.monotonic() + self._retry.delay(record.attempts)
        heapq.heappush(self._due, (record.available_at, next(self._seq), lane))

    async def lag(self) -> int | None:
        """Records of the assigned partitions not yet done (None while unknown)."""
        total = 0
        try:
            for tp in self._consumer.assignment():
                high = self._consumer.highwater(tp)
                if high is None:
                    return None
                offsets = self._offsets.get(tp)
                if offsets is not None and offsets.pending:
                    low = offsets.pending[0]
                else:
                    low = await self._consumer.position(tp)
                total += max(0, high - low)
        except KafkaError:
            return None  # a rebalance is moving the partitions
        return total

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._commit()
        await self._consumer.stop()

    # -- internals --------------------------------------------------------------------

    def _take(self, limit: int) -> list[Delivery]:
        now = time.monotonic()
        taken: list[Delivery] = []
        while self._due and self._due[0][0] <= now and len(taken) < limit:
            _, _, lane = heapq.heappop(self._due)
            queue = self._lanes.get(lane)
            if not queue or lane in self._out or queue[0].available_at > now:
                continue
            record = queue[0]
            record.attempts += 1
            delivery = Delivery(
                id=record.delivery.id,
                topic=record.delivery.topic,
                key=record.delivery.key,
                payload=record.delivery.payload,
                attempts=record.attempts,
            )
            record.delivery = delivery
            self._out[lane] = record
            taken.append(delivery)
        return taken

    async def _fetch(self, wait: float) -> None:
        assigned = self._consumer.assignment()
        if self._buffered >= self._max_buffer:
            self._consumer.pause(*assigned)
        else:
            self._consumer.resume(*assigned)
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(wait * 1000), max_records=self._max_buffer
            )
        except KafkaError as exc:
            raise BusError(f"fetch from {self._topics}: {exc!r}") from exc
        for tp, messages in batches.items():
            offsets = self._offsets.setdefault(tp, _Offsets())
            for message in messages:
                offsets.pending.append(message.offset)
                self._buffer(tp, message)

    def _buffer(self, tp: TopicPartition, message: Any) -> None:
        headers = dict(message.headers or ())
        raw_id = headers.get(ID_HEADER)
        event_id = raw_id.decode() if raw_id else f"{tp.topic}/{tp.partition}/{message.offset}"
        key = message.key.decode() if message.key is not None else ""
        topic = self.config.bus_topic(tp.topic)
        delivery = Delivery(
            id=event_id, topic=topic, key=key, payload=bytes(message.value or b""), attempts=0
        )
        lane = (topic, key)
        queue = self._lanes.setdefault(lane, deque())
        queue.append(_Record(tp, message.offset, delivery))
        self._buffered += 1
        if len(queue) == 1:
            heapq.heappush(self._due, (0.0, next(self._seq), lane))

    def _finish(self, delivery: Delivery) -> _Record | None:
        lane = (delivery.topic, delivery.key)
        record = self._out.get(lane)
        if record is None or record.delivery is not delivery:
            return None
        del self._out[lane]
        queue = self._lanes[lane]
        queue.popleft()
        self._buffered -= 1
        if queue:
            heapq.heappush(self._due, (0.0, next(self._seq), lane))
        else:
            del self._lanes[lane]
        offsets = self._offsets.get(record.tp)
        if offsets is not None:
            offsets.finish(record.offset)
        return record

    async def _dead_letter(self, record: _Record, error: str) -> None:
        delivery = record.delivery
        headers = [
            ("fte-topic", delivery.topic.encode()),
            ("fte-error", error.encode()),
            ("fte-attempts", str(record.attempts).encode()),
        ]
        sent = await self._dlq.send(
            events.DLQ, delivery.key, delivery.payload, delivery.id, headers
        )
        await sent

    async def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= self._commit_interval:
            await self._commit()

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        self._last_commit = time.monotonic()
        offsets = {
            tp: OffsetAndMetadata(o.commit, "")
            for tp, o in self._offsets.items()
            if o.dirty and o.commit is not None and (only is None or tp in only)
        }
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partitions: the new owner redelivers from the last
            # commit, and the idempotent handler skips what was already done.
            log.warning("offset commit failed (%r); records will be redelivered", exc)
            return
        for tp in offsets:
            self._offsets[tp].dirty = False

    async def _revoke(self, revoked: set[TopicPartition]) -> None:
        await self._commit(revoked)
        for lane in [lane for lane, q in self._lanes.items() if q and q[0].tp in revoked]:
            self._buffered -= len(self._lanes.pop(lane))
            self._out.pop(lane, None)
        for tp in revoked:
            self._offsets.pop(tp, None)
