"""The composition root: the one place that turns settings into wired adapters.

Tests call the same `bootstrap()` with fakes for whatever they want to replace.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, Context, load_context
from fte_core.embedding import HashingEmbedder
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent, AgentConfig
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules
from fte_core.ports import (
    ChannelSender,
    CrmStore,
    Embedder,
    EventBus,
    IngestReport,
    KnowledgeBase,
    Responder,
)
from fte_core.ranking import with_cut
from fte_core.testing.bus import InMemoryBus
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.store import InMemoryStore
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """Everything a command or the service needs, closed by `aclose()`."""

    settings: Settings
    agent: Agent
    policy: PolicyEngine
    context: Context
    store: CrmStore
    knowledge: KnowledgeBase
    bus: EventBus
    storage: str  # memory | postgres (embedded or url)
    ingest_report: IngestReport | None
    _stack: AsyncExitStack

    async def aclose(self) -> None:
        await self._stack.aclose()


def make_embedder(settings: Settings) -> Embedder:
    """A litellm model when one is configured; else the local MiniLM (its runtime and
    weights load on first use); else, or when MiniLM is not installed, hashing."""
    if settings.embedding_model:
        from adapters.embedding.litellm import LitellmEmbedder

        return LitellmEmbedder(
            settings.embedding_model,
            settings.embedding_dimension,
            api_base=settings.embedding_api_base,
            api_key=settings.llm_api_key,
        )
    if settings.embedder == "minilm":
        from adapters.embedding.minilm import MiniLMEmbedder, runtime_available
        from adapters.embedding.minilm_build import installed

        if installed(settings.models_path) and runtime_available():
            return MiniLMEmbedder(settings.models_path)
        log.warning(
            "MiniLM is not installed in %s (run `fte model install`): the lexical hashing "
            "embedder is used instead",
            settings.models_path,
        )
    return HashingEmbedder(settings.embedding_dimension)


def make_responder(settings: Settings) -> Responder:
    if not settings.llm_model:
        log.info("no FTE_LLM_MODEL: answers come from the offline extractive responder")
        return OfflineResponder()
    from fte_core.llm import LitellmResponder

    return LitellmResponder(
        settings.llm_model,
        fallbacks=settings.llm_fallbacks,
        api_base=settings.llm_api_base,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
    )


def _close_on_exit(stack: AsyncExitStack, component: object) -> None:
    """litellm-backed components keep HTTP clients open until told; the ports do not
    declare `aclose`, so only the implementations that have one get it called."""
    closer = getattr(component, "aclose", None)
    if closer is not None:
        stack.push_async_callback(closer)


async def _postgres(
    settings: Settings, stack: AsyncExitStack, embedder: Embedder
) -> tuple[CrmStore, KnowledgeBase, str]:
    from adapters.storage.postgres.embedded import EmbeddedPostgres
    from adapters.storage.postgres.knowledge import PostgresKnowledgeBase
    from adapters.storage.postgres.migrate import migrate
    from adapters.storage.postgres.pool import open_pool
    from adapters.storage.postgres.store import PostgresStore

    url = settings.database_url
    label = "postgres"
    if url is None:
        server = EmbeddedPostgres(Path(settings.data_dir) / "pg")
        url = server.start()
        stack.callback(server.stop)
        label = "postgres (embedded)"
    pool = await open_pool(url)
    stack.push_async_callback(pool.close)
    await migrate(pool)
    knowledge = PostgresKnowledgeBase(pool, embedder)
    if settings.kb_threshold is not None:
        knowledge.calibration = with_cut(knowledge.calibration, settings.kb_threshold)
    return PostgresStore(pool), knowledge, label


async def bootstrap(
    settings: Settings,
    *,
    store: CrmStore | None = None,
    knowledge: KnowledgeBase | None = None,
    responder: Responder | None = None,
    fallback: Responder | None = None,
    bus: EventBus | None = None,
    sender: ChannelSender | None = None,
    policy: PolicyEngine | None = None,
    ingest: bool = True,
) -> Runtime:
    stack = AsyncExitStack()
    try:
        context = load_context(settings.context_dir)
        if policy is None:
            policy = PolicyEngine(load_rules(settings.rules_dir))
            stack.callback(policy.close)
        storage = "memory"
        if store is None or knowledge is None:
            if settings.storage == "memory":
                store, knowledge = store or InMemoryStore(), knowledge or InMemoryKnowledgeBase()
            else:
                embedder = make_embedder(settings)
                _close_on_exit(stack, embedder)
                pg_store, pg_kb, storage = await _postgres(settings, stack, embedder)
                store, knowledge = store or pg_store, knowledge or pg_kb
        report = None
        if ingest:
            report = await knowledge.ingest(
                KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, context.product_docs)
            )
        if responder is None:
            responder = make_responder(settings)
            _close_on_exit(stack, responder)
        if fallback is None and responder.name != "offline":
            fallback = OfflineResponder()
        bus = bus or InMemoryBus()
        agent = Agent(
            policy=policy,
            context=context,
            store=store,
            knowledge=knowledge,
            responder=responder,
            fallback=fallback,
            bus=bus,
            sender=sender,
            config=AgentConfig(thread_window=timedelta(hours=settings.thread_window_hours)),
        )
    except BaseException:
        await stack.aclose()
        raise
    return Runtime(
        settings=settings,
        agent=agent,
        policy=policy,
        context=context,
        store=store,
        knowledge=knowledge,
        bus=bus,
        storage=storage,
        ingest_report=report,
        _stack=stack,
    )
