"""StoreReportQueries: the ReportQueries fake over any CrmStore (the in-memory one in
tests and in FTE_STORAGE=memory), one conversation lookup per conversation."""

from __future__ import annotations

from datetime import datetime

from fte_core.clock import as_utc
from fte_core.ports import CrmStore, CustomerMessage, QueueFigures


class StoreReportQueries:
    """The queue is not the store's: its figures are given (None: unknown)."""

    def __init__(self, store: CrmStore, queue: QueueFigures | None = None) -> None:
        self._store = store
        self.queue = queue or QueueFigures()

    async def customer_messages(self, since: datetime, until: datetime) -> list[CustomerMessage]:
        since, until = as_utc(since, "since"), as_utc(until, "until")
        messages = [m for m in await self._store.messages_since(since) if m.created_at < until]
        owners: dict[str, str] = {}
        for conversation_id in {m.conversation_id for m in messages}:
            conversation = await self._store.get_conversation(conversation_id)
            if conversation is not None:
                owners[conversation_id] = conversation.customer_id
        return [
            CustomerMessage(customer_id=owners[m.conversation_id], message=m)
            for m in messages
            if m.conversation_id in owners
        ]

    async def queue_figures(self, since: datetime, until: datetime) -> QueueFigures:
        return self.queue
