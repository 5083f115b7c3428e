"""`fte gmail watch` (start or renew the mailbox's push watch) and `fte gmail sync`
(fetch new mail now, as a push would).

Gmail stops publishing a watch after at most 7 days: run `fte gmail watch` daily (a
Kubernetes CronJob, cron). The first watch records the history id the sync starts from;
a renewal keeps the stored one, so no mail between the two is skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from fte_core.errors import ConfigError, FteError
from service import runner
from service.bootstrap import Runtime, bootstrap
from service.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gmail = sub.add_parser("gmail", help="the Gmail channel (GMAIL_* settings)")
    gsub = gmail.add_subparsers(dest="gmail_command", required=True)
    watch = gsub.add_parser(
        "watch",
        help="start or renew the mailbox's Pub/Sub watch (users.watch); run it daily",
        description="Ask Gmail to publish the mailbox's changes to GMAIL_PUBSUB_TOPIC. "
        "A watch lasts at most 7 days: renew it daily.",
    )
    watch.add_argument("--topic", help="default: $GMAIL_PUBSUB_TOPIC")
    watch.set_defaults(handler=watch_command)
    sync = gsub.add_parser("sync", help="fetch and store the mailbox's new mail now")
    sync.set_defaults(handler=sync_command)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return runner.run(coro)
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _runtime() -> Runtime:
    settings = load_settings()
    if not settings.gmail.api_configured:
        raise ConfigError(
            "GMAIL_MAILBOX and GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE are required"
        )
    return await bootstrap(settings, ingest=False)


def watch_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        runtime = await _runtime()
        try:
            return await watch(runtime, args.topic or runtime.settings.gmail.topic)
        finally:
            await runtime.aclose()

    return _run(go())


async def watch(runtime: Runtime, topic: str | None) -> int:
    client = runtime.gmail.client
    if client is None:
        raise ConfigError("GMAIL_MAILBOX and Gmail credentials are required")
    if not topic:
        raise ConfigError("GMAIL_PUBSUB_TOPIC (or --topic): projects/<project>/topics/<topic>")
    result = await client.watch(topic, [runtime.settings.gmail.label])
    expires = datetime.fromtimestamp(result.expiration / 1000, UTC)
    start = await runtime.mailboxes.record_watch(client.mailbox, result.history_id, expires)
    print(
        f"watching {client.mailbox} ({runtime.settings.gmail.label}) on {topic} until"
        f" {expires:%Y-%m-%d %H:%M} UTC; mail is read from history id {start}"
    )
    return 0


def sync_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        runtime = await _runtime()
        try:
            return await sync(runtime)
        finally:
            await runtime.aclose()

    return _run(go())


async def sync(runtime: Runtime) -> int:
    from adapters.channels.gmail.envelope import PushNotification

    gmail = runtime.gmail
    if gmail.sync is None or gmail.client is None:
        raise ConfigError("GMAIL_MAILBOX and Gmail credentials are required")
    profile = await gmail.client.profile()
    report = await gmail.sync.on_push(
        PushNotification(mailbox=gmail.client.mailbox, history_id=profile.history_id)
    )
    print(
        f"{report.mailbox}: {len(report.stored)} stored, {len(report.skipped)} skipped,"
        f" history id {report.history_id}" + (f" ({report.note})" if report.note else "")
    )
    for skipped in report.skipped:
        print(f"  skipped {skipped.message_id}: {skipped.reason}")
    return 0
