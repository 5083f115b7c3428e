"""`fte db migrate`, `fte kb ingest`, `fte kb eval`, `fte model install`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import msgspec

from fte_core.chunking import chunk_markdown, section_slug, slugify
from fte_core.errors import FteError
from fte_core.ports import IngestReport, KnowledgeBase
from fte_core.retrieval import clean_message, first_query
from service import runner
from service.bootstrap import bootstrap, make_embedder
from service.evaluation import SampleTicket, load_tickets
from service.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database administration")
    dsub = db.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("migrate", help="apply pending SQL migrations").set_defaults(
        handler=migrate_command
    )
    kb = sub.add_parser("kb", help="the knowledge base")
    ksub = kb.add_subparsers(dest="kb_command", required=True)
    ingest = ksub.add_parser("ingest", help="(re-)ingest a markdown document by section")
    ingest.add_argument("path", nargs="?", help="default: <context>/product-docs.md")
    ingest.set_defaults(handler=ingest_command)
    ev = ksub.add_parser("eval", help="retrieval recall@1/@5 on the sample tickets")
    ev.add_argument("--tickets", default=None, help="default: <context>/sample-tickets.json")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=kb_eval_command)
    cal = ksub.add_parser("calibrate", help="fit fusion, ranker and no-match for this embedder")
    cal.add_argument("tickets", nargs="+", help="labelled ticket files (never the held-out)")
    cal.add_argument("--max-false-escalation", type=float, default=0.03)
    cal.set_defaults(handler=calibrate_command)
    model = sub.add_parser("model", help="the local embedding model")
    msub = model.add_subparsers(dest="model_command", required=True)
    inst = msub.add_parser("install", help="fetch, verify and convert all-MiniLM-L6-v2")
    inst.add_argument("--dir", default=None, help="default: $FTE_MODEL_DIR or <data>/models")
    inst.set_defaults(handler=model_install_command)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        return runner.run(coro)
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def migrate_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        settings = load_settings()
        if settings.storage == "memory":
            print("FTE_STORAGE=memory: nothing to migrate")
            return 0
        runtime = await bootstrap(settings, ingest=False)  # bootstrap migrates
        try:
            print(f"migrated ({runtime.storage})")
        finally:
            await runtime.aclose()
        return 0

    return _run(go())


def ingest_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    path = Path(args.path or f"{settings.context_dir}/product-docs.md")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        runtime = await bootstrap(settings, ingest=False)
        try:
            report = await runtime.knowledge.ingest(path.stem, chunk_markdown(path.stem, text))
        finally:
            await runtime.aclose()
        print(_ingest_line(path.stem, report))
        return 0

    return _run(go())


def _ingest_line(document: str, r: IngestReport) -> str:
    return (
        f"{document}: {r.added} added, {r.updated} updated, {r.removed} removed, "
        f"{r.unchanged} unchanged"
    )


class RetrievalReport(msgspec.Struct, frozen=True, kw_only=True):
    embedder: str
    questions: int
    recall_at_1: float
    recall_at_5: float
    no_match: int
    misses: tuple[str, ...]


async def retrieval_eval(
    kb: KnowledgeBase, tickets: list[SampleTicket], embedder: str
) -> RetrievalReport:
    """Top-1 must be one of the expected sections (a multi-question case lists several);
    recall@5 asks for every expected section among the first five."""
    questions = [t for t in tickets if t.expected.action == "answer" and t.expected.wanted()]
    at1 = at5 = empty = 0
    misses = []
    for t in questions:
        passages = await kb.search(first_query(clean_message(t.text), t.subject), 5)
        slugs = [section_slug(p.id) for p in passages]
        wanted = [slugify(w) for w in t.expected.wanted()]
        at1 += bool(slugs) and slugs[0] in wanted
        at5 += all(w in slugs for w in wanted)
        empty += not passages
        if not slugs or slugs[0] not in wanted:
            misses.append(f"{t.id}: expected {'+'.join(wanted)}, got {slugs[:3]}")
    n = len(questions) or 1
    return RetrievalReport(
        embedder=embedder,
        questions=len(questions),
        recall_at_1=at1 / n,
        recall_at_5=at5 / n,
        no_match=empty,
        misses=tuple(misses),
    )


def kb_eval_command(args: argparse.Namespace) -> int:
    async def go() -> int:
        settings = load_settings()
        tickets = load_tickets(args.tickets or f"{settings.context_dir}/sample-tickets.json")
        runtime = await bootstrap(settings)
        try:
            report = await retrieval_eval(
                runtime.knowledge, tickets, f"{make_embedder(settings).name} ({runtime.storage})"
            )
        finally:
            await runtime.aclose()
        if args.json:
            print(msgspec.json.encode(report).decode())
            return 0
        print(f"embedder: {report.embedder}; {report.questions} questions")
        print(
            f"recall@1 {report.recall_at_1:.3f}  recall@5 {report.recall_at_5:.3f}  "
            f"no match {report.no_match}"
        )
        for miss in report.misses:
            print(f"  miss {miss}")
        return 0

    return _run(go())


def model_install_command(args: argparse.Namespace) -> int:
    from adapters.embedding.minilm_build import install

    target = args.dir or load_settings().models_path
    try:
        path = install(target)
    except FteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"all-MiniLM-L6-v2 ready in {path}")
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from adapters.storage.postgres.knowledge import PostgresKnowledgeBase
    from service.calibration import calibrate, collect

    async def go() -> int:
        settings = load_settings()
        tickets = [t for path in args.tickets for t in load_tickets(path)]
        runtime = await bootstrap(settings)
        try:
            kb = runtime.knowledge
            if not isinstance(kb, PostgresKnowledgeBase):
                print("error: calibration needs the PostgreSQL knowledge base", file=sys.stderr)
                return 2
            samples = await collect(kb, tickets)
            embedder = make_embedder(settings).name
        finally:
            await runtime.aclose()
        calibration, stats = calibrate(samples, embedder, args.max_false_escalation)
        print(msgspec.json.encode(calibration).decode())
        print(
            ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()
            )
        )
        return 0

    return _run(go())
