"""In-memory MailboxState (the Gmail sync's history-id watermark per mailbox)."""

from __future__ import annotations

from datetime import datetime


class InMemoryMailboxes:
    def __init__(self) -> None:
        self.watermarks: dict[str, int] = {}
        self.expiries: dict[str, datetime] = {}

    async def watermark(self, mailbox: str) -> int | None:
        return self.watermarks.get(mailbox)

    async def advance(self, mailbox: str, history_id: int) -> None:
        self.watermarks[mailbox] = max(history_id, self.watermarks.get(mailbox, 0))

    async def record_watch(self, mailbox: str, history_id: int, expires_at: datetime) -> int:
        self.expiries[mailbox] = expires_at
        return self.watermarks.setdefault(mailbox, history_id)

    async def watch_expiry(self, mailbox: str) -> datetime | None:
        return self.expiries.get(mailbox)
