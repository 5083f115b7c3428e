"""`fte digest` and `fte learn`: the operators' daily digest and learning report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine, Sequence
from datetime import date, timedelta
from typing import Any

import msgspec

from fte_core.clock import utc_now
from fte_core.errors import FteError, ValidationError
from fte_core.learning import DEFAULT_SIMILARITY
from service import digest_render, learning, runner
from service.bootstrap import Runtime, bootstrap, make_embedder
from service.digest import encode
from service.digest_job import make_digest, stored_digest
from service.settings import load_settings

FORMATS = ("text", "json", "html")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dg = sub.add_parser(
        "digest",
        help="the daily digest per channel",
        description="The digest of one UTC day (default: yesterday). A finished day's "
        "digest is stored once for the inbox; today's is printed only.",
    )
    dg.add_argument("--date", default=None, help="YYYY-MM-DD (UTC); default: yesterday")
    dg.add_argument("--format", choices=FORMATS, default="text")
    dg.set_defaults(handler=digest_command)
    ln = sub.add_parser(
        "learn",
        help="resolved tickets the knowledge base could not answer, grouped",
        description="Tickets a person resolved that the agent could not answer, grouped "
        "by meaning: candidates for new knowledge-base articles. Stored for the inbox.",
    )
    ln.add_argument("--since", default="30d", help="period before now: 30d, 12h, 90m")
    ln.add_argument("--format", choices=("text", "json"), default="text")
    ln.add_argument("--similarity", type=float, default=DEFAULT_SIMILARITY)
    ln.set_defaults(handler=learn_command)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return runner.run(coro)
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_day(value: str | None, today: date) -> date:
    if value is None:
        return today - timedelta(days=1)
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError("--date", f"expected YYYY-MM-DD, not {value!r}") from exc
    if day > today:
        raise ValidationError("--date", f"{value} is in the future")
    return day


async def digest_output(runtime: Runtime, day: date, fmt: str) -> tuple[str, str]:
    """(what to print, a note for stderr); a finished day's digest is stored once."""
    now = utc_now()
    digest = await make_digest(runtime, day, now)
    body = encode(digest)
    page = digest_render.html(digest)
    note = "today is not over: not stored"
    if day < now.date():
        if await stored_digest(runtime.reports, day) is None:
            await runtime.reports.save_report("digest", digest.title, body, page)
            note = f"stored as {digest.title!r}"
        else:
            note = f"{digest.title!r} was already stored; printed as computed now"
    shown = {"json": body.decode(), "html": page, "text": digest_render.text(digest)}[fmt]
    return shown, note


def digest_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        day = parse_day(args.date, utc_now().date())
        runtime = await bootstrap(load_settings(), ingest=False)
        try:
            shown, note = await digest_output(runtime, day, args.format)
        finally:
            await runtime.aclose()
        print(shown.rstrip("\n"))
        print(note, file=sys.stderr)
        return 0

    return _run(go())


def embedder_for(runtime: Runtime) -> learning.Embed:
    """The knowledge base's own vectors when it has them, else the configured embedder."""

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors = await runtime.knowledge.embed_queries(texts)
        if texts and all(vectors):
            return vectors
        return await make_embedder(runtime.settings).embed(texts)

    return embed


async def learn_report(
    runtime: Runtime, since: timedelta, similarity: float
) -> learning.LearningReport:
    now = utc_now()
    report = await learning.build_report(
        runtime.store, runtime.knowledge, embedder_for(runtime), now - since, now, similarity
    )
    await runtime.reports.save_report(
        "learning", report.title, msgspec.json.encode(report), learning.html(report)
    )
    return report


def learn_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        period = learning.parse_since(args.since)
        if not 0 < args.similarity < 1:
            raise ValidationError("--similarity", "must be between 0 and 1")
        runtime = await bootstrap(load_settings(), ingest=False)
        try:
            report = await learn_report(runtime, period, args.similarity)
        finally:
            await runtime.aclose()
        if args.format == "json":
            print(msgspec.json.encode(report).decode())
        else:
            print(learning.text(report).rstrip("\n"))
        return 0

    return _run(go())
