"""MemoryOperations: the OperationsReader over any CrmStore's messages (memory mode)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fte_core.monitoring import QueueDepth, Snapshot, snapshot_of
from fte_core.ports import CrmStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MemoryOperations:
    """Recomputes everything from every stored message: fine for the memory store, which
    holds a test's or a demo's worth of messages."""

    def __init__(
        self,
        store: CrmStore,
        *,
        dead_letters: Callable[[], int] = lambda: 0,
        queues: Callable[[], tuple[QueueDepth, ...]] = tuple,
    ) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._queues = queues

    async def snapshot(self, now: datetime, window: timedelta) -> Snapshot:
        messages = await self._store.messages_since(_EPOCH, limit=10_000_000)
        return snapshot_of(
            messages, now, window, queues=self._queues(), dead_letters=self._dead_letters()
        )
