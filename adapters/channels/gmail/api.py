"""The Gmail API calls the channel makes, async, typed, errors in the FteError tree.

google-api-python-client is synchronous (httplib2, not thread-safe), so each call runs in
a worker thread on a service object of its own, taken from a small pool: concurrent sends
never share a connection, and the event loop never waits on Google.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httplib2
import msgspec
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import Error as ClientError
from googleapiclient.errors import HttpError

from adapters.channels.gmail.errors import RETRYABLE_STATUSES, GmailError, send_error

Service = Any  # googleapiclient's Resource: built from the discovery document, untyped
ServiceFactory = Callable[[], Service]
_T = TypeVar("_T")
ME = "me"  # the authenticated mailbox (the delegated user, or the token's owner)


class GmailMessage(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    thread_id: str = ""
    label_ids: tuple[str, ...] = ()
    internal_date: str | None = None  # milliseconds since the epoch, as a string
    raw: str = ""  # base64url of the RFC 5322 message (format=raw)


class _MessageRef(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    label_ids: tuple[str, ...] = ()


class _Added(msgspec.Struct, frozen=True, kw_only=True):
    message: _MessageRef


class _HistoryRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    messages_added: tuple[_Added, ...] = ()


class _HistoryPage(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    history: tuple[_HistoryRecord, ...] = ()
    next_page_token: str | None = None
    history_id: int = 0


class _ListPage(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    messages: tuple[_MessageRef, ...] = ()
    next_page_token: str | None = None


class _Header(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    value: str


class _Payload(msgspec.Struct, frozen=True, kw_only=True):
    headers: tuple[_Header, ...] = ()


class _Metadata(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    thread_id: str = ""
    payload: _Payload = _Payload()


class _Sent(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    thread_id: str = ""


class Profile(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    email_address: str
    history_id: int


class Watch(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    history_id: int
    expiration: int  # milliseconds since the epoch


class History(msgspec.Struct, frozen=True, kw_only=True):
    """New messages since a history id, oldest first, and the mailbox's id now."""

    message_ids: tuple[str, ...]
    history_id: int


class GmailClient:
    """One mailbox's Gmail API. `build` makes a service object (googleapiclient's
    `build("gmail", "v1", ...)`); up to `pool_size` are made, one per concurrent call.
    `num_retries`: the client library's own retries with backoff on 429/5xx."""

    def __init__(
        self, mailbox: str, build: ServiceFactory, *, pool_size: int = 4, num_retries: int = 3
    ) -> None:
        self.mailbox = mailbox
        self._build = build
        self._num_retries = num_retries
        self._idle: asyncio.Queue[Service] = asyncio.Queue()
        self._made = 0
        self._pool_size = pool_size

    async def history(self, start: int, label_id: str | None = "INBOX") -> History:
        """Every message added since `start`, all pages; GmailError 404 when `start` is
        too old for Gmail to remember (then `resync`)."""
        ids: dict[str, None] = {}
        token: str | None = None
        latest = start
        while True:
            params = {
                "startHistoryId": str(start),
                "historyTypes": ["messageAdded"],
                "labelId": label_id,
                "pageToken": token,
                "maxResults": 500,
            }
            page = await self._call(_HistoryPage, "history", "list", params)
            for record in page.history:
                for added in record.messages_added:
                    ids.setdefault(added.message.id, None)
            latest = max(latest, page.history_id)
            token = page.next_page_token
            if not token:
                return History(message_ids=tuple(ids), history_id=latest)

    async def recent(self, query: str, label_ids: Sequence[str], limit: int) -> tuple[str, ...]:
        """Message ids matching a search, oldest first (for a resync)."""
        ids: list[str] = []
        token: str | None = None
        while len(ids) < limit:
            params = {"q": query, "labelIds": list(label_ids), "pageToken": token}
            page = await self._call(_ListPage, "messages", "list", {**params, "maxResults": 100})
            ids.extend(m.id for m in page.messages)
            token = page.next_page_token
            if not token:
                break
        return tuple(reversed(ids[:limit]))

    async def message(self, message_id: str) -> GmailMessage | None:
        """The message in raw form; None when it is gone (deleted since the push)."""
        try:
            params = {"id": message_id, "format": "raw"}
            return await self._call(GmailMessage, "messages", "get", params)
        except GmailError as exc:
            if exc.status == 404:
                return None
            raise

    async def headers(self, message_id: str, names: Sequence[str]) -> dict[str, str]:
        """Some headers of a message (first value of each, names lower-cased)."""
        params = {"id": message_id, "format": "metadata", "metadataHeaders": list(names)}
        meta = await self._call(_Metadata, "messages", "get", params)
        found: dict[str, str] = {}
        for header in meta.payload.headers:
            found.setdefault(header.name.lower(), header.value)
        return found

    async def send(self, raw: str, thread_id: str | None) -> str:
        """Send a base64url RFC 5322 message (in `thread_id`); the sent message's id.
        Never retried blindly here: a send that may have gone out is the outbox's call."""
        body = {"raw": raw, **({"threadId": thread_id} if thread_id else {})}
        try:
            sent = await self._call(_Sent, "messages", "send", {"body": body}, retries=0)
        except GmailError as exc:
            raise send_error(
                "messages.send", exc.detail, status=exc.status, retryable=exc.retryable
            ) from exc
        return sent.id

    async def profile(self) -> Profile:
        return await self._call(Profile, None, "getProfile", {})

    async def watch(self, topic: str, label_ids: Sequence[str]) -> Watch:
        body = {"topicName": topic, "labelIds": list(label_ids), "labelFilterBehavior": "include"}
        return await self._call(Watch, None, "watch", {"body": body})

    async def _call(
        self,
        kind: type[_T],
        collection: str | None,
        method: str,
        params: Mapping[str, object],
        *,
        retries: int | None = None,
    ) -> _T:
        """users().<collection>().<method>(userId="me", **params), executed in a thread."""
        operation = f"{collection}.{method}" if collection else method
        call = _Call(operation, collection, method, {"userId": ME, **params})
        service = await self._take()
        try:
            attempts = self._num_retries if retries is None else retries
            response = await asyncio.to_thread(call.execute, service, attempts)
        finally:
            self._idle.put_nowait(service)
        try:
            return msgspec.convert(response, kind, strict=False)
        except msgspec.ValidationError as exc:
            message = f"unexpected response: {exc}"
            raise GmailError(operation, message, status=None, retryable=False) from exc

    async def _take(self) -> Service:
        if self._idle.empty() and self._made < self._pool_size:
            self._made += 1
            try:
                return await asyncio.to_thread(self._build)
            except BaseException:
                self._made -= 1
                raise
        return await self._idle.get()


class _Call(msgspec.Struct, frozen=True):
    operation: str
    collection: str | None
    method: str
    params: dict[str, object]

    def execute(self, service: Service, retries: int) -> Any:
        users = service.users()
        target = getattr(users, self.collection)() if self.collection else users
        request = getattr(target, self.method)(**self.params)
        try:
            return request.execute(num_retries=retries)
        except HttpError as exc:
            status = int(exc.resp.status)
            retryable = status in RETRYABLE_STATUSES
            raise GmailError(
                self.operation, _reason(exc), status=status, retryable=retryable
            ) from exc
        except auth_exceptions.RefreshError as exc:
            message = f"credentials refused: {exc}"
            raise GmailError(self.operation, message, status=401, retryable=False) from exc
        except (auth_exceptions.TransportError, httplib2.HttpLib2Error, OSError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise GmailError(self.operation, message, status=None, retryable=True) from exc
        except ClientError as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise GmailError(self.operation, message, status=None, retryable=False) from exc


def _reason(exc: HttpError) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc.resp, "reason", None)
    return str(reason or "no reason given")
