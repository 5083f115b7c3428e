"""Making, storing and sending the daily digest, once per day.

The service runs `digest_schedule` beside the API: at FTE_DIGEST_HOUR (UTC) it makes the
digest of the day before, and at start-up it catches up a missed one. A day's digest is
stored once (looked up by its title first; a unique index on the title settles two
replicas racing), and emailed to FTE_DIGEST_EMAIL only by the process that stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from fte_core.clock import Clock, utc_now
from fte_core.errors import DeliveryError, FteError, StorageError
from fte_core.models import Channel, Reply
from fte_core.ports import ChannelSender, DeliveryTarget, ReportStore, StoredReport
from service import digest_render
from service.bootstrap import Runtime
from service.digest import Digest, build_digest, encode, section_titles

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=10)
_LOOKBACK = 400  # digests searched for a day's title (over a year of days)


def digest_title(day: date) -> str:
    return f"Daily digest {day.isoformat()}"


async def stored_digest(reports: ReportStore, day: date) -> StoredReport | None:
    title = digest_title(day)
    return next((r for r in await reports.reports("digest", _LOOKBACK) if r.title == title), None)


async def make_digest(runtime: Runtime, day: date, now: datetime) -> Digest:
    sections = section_titles(runtime.context.product_docs)
    return await build_digest(runtime.queries, day, now, sections)


async def publish_digest(
    runtime: Runtime,
    day: date,
    now: datetime,
    *,
    recipients: Sequence[str] = (),
    sender: ChannelSender | None = None,
) -> tuple[StoredReport, bool]:
    """The day's stored digest, made and stored (and sent) unless it already was; True
    when this call stored it."""
    existing = await stored_digest(runtime.reports, day)
    if existing is not None:
        return existing, False
    digest = await make_digest(runtime, day, now)
    try:
        saved = await runtime.reports.save_report(
            "digest", digest.title, encode(digest), digest_render.html(digest)
        )
    except StorageError:
        raced = await stored_digest(runtime.reports, day)  # another replica stored it first
        if raced is None:
            raise
        return raced, False
    if recipients and sender is not None:
        await _email(digest, recipients, sender)
    return saved, True


async def _email(digest: Digest, recipients: Sequence[str], sender: ChannelSender) -> None:
    """A failed email does not undo the stored digest: it is logged, the inbox has it."""
    reply = Reply(channel=Channel.EMAIL, parts=(digest_render.text(digest),))
    for address in recipients:
        target = DeliveryTarget(channel=Channel.EMAIL, address=address, subject=digest.title)
        try:
            await sender.send(reply, target)
        except DeliveryError as exc:
            log.error("digest email to an operator failed: %s", exc)


def due_day(now: datetime, hour: int) -> date:
    """The latest day whose digest is due: yesterday once `hour` has struck today, else
    the day before (catching up a digest a stopped service missed)."""
    today = now.date()
    return today - timedelta(days=1 if now.hour >= hour else 2)


def next_run(now: datetime, hour: int) -> datetime:
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


async def digest_schedule(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    sender: ChannelSender | None = None,
    clock: Clock = utc_now,
) -> None:
    """Until `stop`: publish the due digest, then sleep until the next digest hour (or
    RETRY_AFTER when storing failed)."""
    settings = runtime.settings
    if settings.digest_hour < 0:
        return
    while not stop.is_set():
        now = clock()
        wait = next_run(now, settings.digest_hour) - now
        try:
            report, made = await publish_digest(
                runtime,
                due_day(now, settings.digest_hour),
                now,
                recipients=settings.digest_email,
                sender=sender,
            )
            if made:
                log.info("stored %s", report.title)
        except FteError as exc:
            log.error("daily digest failed, retrying in %s: %s", RETRY_AFTER, exc)
            wait = min(wait, RETRY_AFTER)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait.total_seconds())
