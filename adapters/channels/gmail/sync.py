"""A mailbox's new mail, fetched after a push and stored exactly once.

From the stored history id (MailboxState) `history.list` names the messages added since;
each is fetched, parsed and handed to `submit` (Agent.submit: stored and queued in one
transaction, idempotent on the Gmail message id). Only when all are stored is the history
id advanced: a crash in between re-reads from the old one, and the redelivered ones are
recognised as stored. When Gmail no longer has history that old (HTTP 404), the recent
inbox is read instead and the watermark restarts from the mailbox's current id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec

from adapters.channels.gmail.api import GmailClient
from adapters.channels.gmail.envelope import PushNotification
from adapters.channels.gmail.errors import GmailError
from adapters.channels.gmail.inbound import Skipped, to_inbound
from adapters.channels.gmail.mime import TRUSTED_AUTHSERV_ID
from fte_core.errors import ValidationError
from fte_core.models import InboundMessage
from fte_core.ports import MailboxState

log = logging.getLogger(__name__)

Submit = Callable[[InboundMessage], Awaitable[object]]


class SyncReport(msgspec.Struct, frozen=True, kw_only=True):
    mailbox: str
    history_id: int | None  # the watermark after this sync
    stored: tuple[str, ...] = ()  # Gmail message ids handed to the agent
    skipped: tuple[Skipped, ...] = ()
    resynced: bool = False
    note: str | None = None


class MailboxSync:
    def __init__(
        self,
        client: GmailClient,
        state: MailboxState,
        submit: Submit,
        *,
        label_id: str = "INBOX",
        authserv_id: str = TRUSTED_AUTHSERV_ID,
        resync_query: str = "newer_than:7d",
        resync_limit: int = 200,
    ) -> None:
        self.client = client
        self.state = state
        self.submit = submit
        self.label_id = label_id
        self.authserv_id = authserv_id
        self.resync_query = resync_query
        self.resync_limit = resync_limit
        self._lock = asyncio.Lock()  # one sync at a time per process (others would re-read)

    @property
    def mailbox(self) -> str:
        return self.client.mailbox

    async def on_push(self, push: PushNotification) -> SyncReport:
        if push.mailbox != self.mailbox:
            log.warning("push for mailbox %s, not ours (%s): ignored", push.mailbox, self.mailbox)
            return SyncReport(mailbox=push.mailbox, history_id=None, note="not our mailbox")
        async with self._lock:
            start = await self.state.watermark(self.mailbox)
            if start is None:
                log.warning(
                    "no history id stored for %s (run `fte gmail watch`): starting from this"
                    " push's %d; earlier mail is not fetched",
                    self.mailbox,
                    push.history_id,
                )
                await self.state.advance(self.mailbox, push.history_id)
                return SyncReport(mailbox=self.mailbox, history_id=push.history_id, note="started")
            if push.history_id <= start:
                return SyncReport(mailbox=self.mailbox, history_id=start, note="nothing new")
            return await self._sync(start)

    async def _sync(self, start: int) -> SyncReport:
        try:
            history = await self.client.history(start, self.label_id)
        except GmailError as exc:
            if exc.status != 404:
                raise
            return await self._resync(start)
        stored, skipped = await self._take(history.message_ids)
        await self.state.advance(self.mailbox, history.history_id)
        return SyncReport(
            mailbox=self.mailbox, history_id=history.history_id, stored=stored, skipped=skipped
        )

    async def _resync(self, start: int) -> SyncReport:
        log.warning(
            "Gmail no longer has history from %d for %s: reading the inbox (%s) instead",
            start,
            self.mailbox,
            self.resync_query,
        )
        now = await self.client.profile()  # taken first: nothing after it is skipped
        ids = await self.client.recent(self.resync_query, [self.label_id], self.resync_limit)
        stored, skipped = await self._take(ids)
        await self.state.advance(self.mailbox, now.history_id)
        return SyncReport(
            mailbox=self.mailbox,
            history_id=now.history_id,
            stored=stored,
            skipped=skipped,
            resynced=True,
        )

    async def _take(self, ids: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Skipped, ...]]:
        stored: list[str] = []
        skipped: list[Skipped] = []
        for message_id in ids:
            outcome = await self._one(message_id)
            if isinstance(outcome, Skipped):
                log.info("gmail message %s not taken in: %s", message_id, outcome.reason)
                skipped.append(outcome)
            else:
                stored.append(message_id)
        return tuple(stored), tuple(skipped)

    async def _one(self, message_id: str) -> Skipped | None:
        message = await self.client.message(message_id)
        if message is None:
            return Skipped(message_id=message_id, reason="deleted before it was fetched")
        try:
            inbound = to_inbound(message, self.mailbox, authserv_id=self.authserv_id)
        except ValidationError as exc:
            # no sender to answer: nothing can be stored for it; an operator finds it in
            # the mailbox, and the log says why it was passed over
            log.error("gmail message %s cannot be read: %s", message_id, exc)
            return Skipped(message_id=message_id, reason=f"unreadable: {exc}")
        if isinstance(inbound, Skipped):
            return inbound
        await self.submit(inbound)
        return None
