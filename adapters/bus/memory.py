"""An in-process queue with the PostgreSQL queue's semantics (FTE_BUS=memory, and tests).

Nothing survives the process; otherwise it behaves like the durable buses: per-key order,
one delivery of a key out at a time, a visibility timeout after which an unacked delivery
is handed out again, exponential backoff and dead letters kept with their error.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Iterable

import msgspec

from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.ports import Delivery


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    topic: str
    key: str
    payload: bytes
    attempts: int
    error: str


class _Entry:
    __slots__ = ("attempts", "available_at", "id", "key", "locked_by", "locked_until", "payload")

    def __init__(self, id: int, key: str, payload: bytes) -> None:
        self.id = id
        self.key = key
        self.payload = payload
        self.attempts = 0
        self.available_at = 0.0
        self.locked_until = 0.0
        self.locked_by: object = None


class _Topic:
    """Per-key FIFO lanes plus a heap of the lane heads that may be due."""

    def __init__(self) -> None:
        self.lanes: dict[str, deque[_Entry]] = {}
        self.due: list[tuple[float, int, str]] = []  # (when, entry id, key)
        self.size = 0

    def push(self, entry: _Entry) -> None:
        lane = self.lanes.setdefault(entry.key, deque())
        lane.append(entry)
        self.size += 1
        if len(lane) == 1:
            heapq.heappush(self.due, (0.0, entry.id, entry.key))

    def head(self, key: str) -> _Entry | None:
        lane = self.lanes.get(key)
        return lane[0] if lane else None

    def pop_head(self, key: str) -> None:
        lane = self.lanes[key]
        lane.popleft()
        self.size -= 1
        if lane:
            heapq.heappush(self.due, (0.0, lane[0].id, key))
        else:
            del self.lanes[key]


class MemoryBus:
    """Publisher and broker in one object; `consumer()` opens receivers over its topics."""

    def __init__(self, retry: RetryPolicy | None = None, visibility_timeout: float = 30.0) -> None:
        self.retry = retry or RetryPolicy()
        self.visibility_timeout = visibility_timeout
        self.dead_letters: list[DeadLetter] = []
        self._topics: dict[str, _Topic] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None:
        self.put(topic, key, events.encode(event))

    def put(self, topic: str, key: str, payload: bytes) -> int:
        entry = _Entry(next(self._ids), key, payload)
        self._topic(topic).push(entry)
        self._changed.set()
        return entry.id

    def consumer(self, topics: Iterable[str]) -> MemoryConsumer:
        return MemoryConsumer(self, tuple(topics))

    def pending(self, topic: str) -> int:
        return self._topic(topic).size

    def _topic(self, name: str) -> _Topic:
        return self._topics.setdefault(name, _Topic())

    def _take(self, owner: object, topics: tuple[str, ...], limit: int) -> list[Delivery]:
        now = time.monotonic()
        taken: list[Delivery] = []
        for name in topics:
            topic = self._topic(name)
            while topic.due and topic.due[0][0] <= now and len(taken) < limit:
                _, entry_id, key = heapq.heappop(topic.due)
                entry = topic.head(key)
                if entry is None or entry.id != entry_id:
                    continue  # stale: acked or dead-lettered since
                if entry.locked_until > now or entry.available_at > now:
                    continue  # a later heap item for this head exists
                entry.attempts += 1
                entry.locked_by = owner
                entry.locked_until = now + self.visibility_timeout
                heapq.heappush(topic.due, (entry.locked_until, entry.id, key))
                taken.append(_delivery(name, entry))
        return taken

    def _next_due(self, topics: tuple[str, ...]) -> float | None:
        whens = [self._topic(t).due[0][0] for t in topics if self._topic(t).due]
        return min(whens) if whens else None

    def _entry(self, delivery: Delivery, owner: object) -> _Entry | None:
        entry = self._topic(delivery.topic).head(delivery.key)
        if entry is None or str(entry.id) != delivery.id or entry.locked_by is not owner:
            return None  # no longer ours: the visibility timeout handed it out again
        return entry

    def _release(self, owner: object) -> None:
        for topic in self._topics.values():
            for key, lane in topic.lanes.items():
                entry = lane[0]
                if entry.locked_by is owner:
                    entry.locked_by, entry.locked_until = None, 0.0
                    heapq.heappush(topic.due, (entry.available_at, entry.id, key))
        self._changed.set()


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, topics: tuple[str, ...]) -> None:
        self._bus = bus
        self._topics = topics
        self._closed = False

    async def receive(self, limit: int, max_wait: float) -> list[Delivery]:
        deadline = time.monotonic() + max_wait
        while not self._closed:
            self._bus._changed.clear()
            taken = self._bus._take(self, self._topics, limit)
            if taken:
                return taken
            now = time.monotonic()
            if now >= deadline:
                break
            wake = min(deadline, self._bus._next_due(self._topics) or deadline)
            try:
                await asyncio.wait_for(self._bus._changed.wait(), max(0.0, wake - now))
            except TimeoutError:
                continue
        return []

    async def ack(self, delivery: Delivery) -> None:
        entry = self._bus._entry(delivery, self)
        if entry is not None:
            self._bus._topic(delivery.topic).pop_head(delivery.key)
            self._bus._changed.set()

    async def retry(self, delivery: Delivery, error: str) -> bool:
        entry = self._bus._entry(delivery, self)
        if entry is None:
            return False
        topic = self._bus._topic(delivery.topic)
        if self._bus.retry.exhausted(entry.attempts):
            self._bus.dead_letters.append(
                DeadLetter(
                    id=delivery.id,
                    topic=delivery.topic,
                    key=delivery.key,
                    payload=entry.payload,
                    attempts=entry.attempts,
                    error=error,
                )
            )
            topic.pop_head(delivery.key)
            self._bus._changed.set()
            return True
        entry.locked_by, entry.locked_until = None, 0.0
        entry.available_at = time.monotonic() + self._bus.retry.delay(entry.attempts)
        heapq.heappush(topic.due, (entry.available_at, entry.id, entry.key))
        self._bus._changed.set()
        return False

    async def lag(self) -> int | None:
        return sum(self._bus.pending(t) for t in self._topics)

    async def close(self) -> None:
        self._closed = True
        self._bus._release(self)


def _delivery(topic: str, entry: _Entry) -> Delivery:
    return Delivery(
        id=str(entry.id), topic=topic, key=entry.key, payload=entry.payload, attempts=entry.attempts
    )
