"""The composition root: the one place that turns settings into wired adapters.

Tests call the same `bootstrap()` with fakes for whatever they want to replace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.bus.memory import MemoryBus
from adapters.bus.retry import RetryPolicy
from fte_core import events
from fte_core.access import ticket_token
from fte_core.chunking import chunk_markdown
from fte_core.context import KB_DOCUMENT, Context, load_context
from fte_core.delivery import Outbound
from fte_core.embedding import HashingEmbedder
from fte_core.errors import ConfigError
from fte_core.language import warm as warm_languages
from fte_core.models import Channel
from fte_core.offline import OfflineResponder
from fte_core.pipeline import Agent, AgentConfig
from fte_core.policy.engine import PolicyEngine
from fte_core.policy.loader import load_rules
from fte_core.ports import (
    ChannelSender,
    CrmStore,
    DeliveryLedger,
    Embedder,
    EventBus,
    EventConsumer,
    IngestReport,
    KnowledgeBase,
    MailboxState,
    OperationsReader,
    ReportQueries,
    ReportStore,
    Responder,
    TicketNotes,
)
from fte_core.ranking import with_cut
from service.gmail_channel import GmailChannel, make_gmail, make_gmail_sender
from service.local_secrets import load_or_create
from service.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from adapters.bus.relay import OutboxRelay
    from adapters.channels.gmail.api import GmailClient
    from fte_core.testing.store import InMemoryStore

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
    token_secret: bytes  # signs ticket access tokens (fte_core.access)
    buses: Buses  # the configured bus; its consumer only when asked to consume
    reports: ReportStore  # the operators' digest, learning and shadow reports
    outbound: Outbound  # delivers queued replies through the channel senders
    mailboxes: MailboxState  # the Gmail sync's history id per mailbox
    gmail: GmailChannel  # push verifier, API client and sync, as far as configured
    queries: ReportQueries  # what those reports read
    notes: TicketNotes  # operators' notes on tickets (the inbox)
    operations: OperationsReader  # the figures /metrics exports and alerts judge
    _stack: AsyncExitStack

    async def aclose(self) -> None:
        await self._stack.aclose()


def token_secret(settings: Settings) -> bytes:
    value = settings.token_secret or load_or_create(settings.secret_file("token-secret"))
    return value.encode("utf-8")


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


def _warm(responder: Responder) -> None:
    """lingua's language models load on first use (seconds) and litellm takes ~3 s to
    import: a worker pays both before it consumes, not on a customer's message."""
    warm_languages()
    warm = getattr(responder, "warm", None)
    if callable(warm):
        warm()


def _close_on_exit(stack: AsyncExitStack, component: object) -> None:
    """litellm-backed components keep HTTP clients open until told; the ports do not
    declare `aclose`, so only the implementations that have one get it called."""
    closer = getattr(component, "aclose", None)
    if closer is not None:
        stack.push_async_callback(closer)


WHATSAPP_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM")


def whatsapp_missing(settings: Settings) -> tuple[str, ...]:
    values = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_whatsapp_from,
    )
    return tuple(name for name, value in zip(WHATSAPP_SETTINGS, values, strict=True) if not value)


def make_senders(
    settings: Settings, *, gmail_client: GmailClient | None = None
) -> dict[Channel, ChannelSender]:
    """The channel senders the configuration enables (one line per channel). The web form
    has none: its replies are read on the ticket's status page."""
    senders: dict[Channel, ChannelSender] = {}
    gmail = make_gmail_sender(settings.gmail, gmail_client)
    if gmail is not None:
        senders[Channel.EMAIL] = gmail
    if not whatsapp_missing(settings):
        from adapters.channels.whatsapp.sender import TwilioSender
        from service.settings import check_whatsapp_from

        senders[Channel.WHATSAPP] = TwilioSender.connect(
            settings.twilio_account_sid or "",
            settings.twilio_auth_token or "",
            check_whatsapp_from(settings.twilio_whatsapp_from or ""),
            status_callback=f"{settings.base_url}/api/v1/webhooks/whatsapp/status",
            api_base=settings.twilio_api_base,
        )
    gmail = make_gmail_sender(settings.gmail)
    if gmail is not None:
        senders[Channel.EMAIL] = gmail
    return senders


def channel_readiness(settings: Settings) -> dict[str, str]:
    """Each channel configured or not, for `/api/v1/ready` (one line per channel)."""
    missing = whatsapp_missing(settings)
    whatsapp = "configured" if not missing else f"not configured (set {', '.join(missing)})"
    if not missing and not settings.public_base_url:
        whatsapp += " (FTE_PUBLIC_BASE_URL unset: signatures are checked against it)"
    return {
        Channel.WEB_FORM.value: "configured",
        Channel.WHATSAPP.value: whatsapp,
        Channel.EMAIL.value: settings.gmail.status(),
    }


@dataclass(frozen=True, slots=True)
class _Records:
    """Every store beside the CRM and the knowledge base, built together so the choice
    between PostgreSQL and the in-memory fakes is made in one place."""

    deliveries: DeliveryLedger
    mailboxes: MailboxState
    reports: ReportStore
    queries: ReportQueries
    notes: TicketNotes
    operations: OperationsReader


def _records(
    pool: AsyncConnectionPool[Any] | None, store: CrmStore, settings: Settings, buses: Buses
) -> _Records:
    if pool is None:  # no PostgreSQL: only ever by the explicit FTE_STORAGE=memory
        if settings.storage != "memory":
            raise ConfigError(
                "storage: a store and knowledge base passed in without a PostgreSQL pool"
                " need storage='memory' (FTE_STORAGE=memory); in-memory records are never"
                " a default"
            )
        return _memory_records(store, buses)
    from adapters.storage.postgres.deliveries import PostgresDeliveries
    from adapters.storage.postgres.mailboxes import PostgresMailboxes
    from adapters.storage.postgres.monitoring import PostgresOperations
    from adapters.storage.postgres.notes import PostgresNotes
    from adapters.storage.postgres.report_queries import PostgresReportQueries
    from adapters.storage.postgres.reports import PostgresReports

    return _Records(
        deliveries=PostgresDeliveries(pool),
        mailboxes=PostgresMailboxes(pool),
        reports=PostgresReports(pool),
        queries=PostgresReportQueries(pool, dead_letters_table=settings.bus != "kafka"),
        notes=PostgresNotes(pool),
        operations=PostgresOperations(pool),
    )


def _memory_records(store: CrmStore, buses: Buses) -> _Records:
    from fte_core.testing.deliveries import InMemoryDeliveries
    from fte_core.testing.mailboxes import InMemoryMailboxes
    from fte_core.testing.monitoring import MemoryOperations
    from fte_core.testing.notes import InMemoryNotes
    from fte_core.testing.report_queries import StoreReportQueries
    from fte_core.testing.reports import InMemoryReports

    bus = buses.bus
    operations = (
        MemoryOperations(store, dead_letters=lambda: len(bus.dead_letters))
        if isinstance(bus, MemoryBus)
        else MemoryOperations(store)
    )
    return _Records(
        deliveries=InMemoryDeliveries(store),
        mailboxes=InMemoryMailboxes(),
        reports=InMemoryReports(),
        queries=StoreReportQueries(store),
        notes=InMemoryNotes(store),
        operations=operations,
    )


# `fte eval`'s scope: a PostgreSQL schema of its own, emptied at each run, so sample
# tickets never mix with real conversations.
EVAL_SCOPE = "fte_eval"


async def _postgres(
    settings: Settings, stack: AsyncExitStack, embedder: Embedder, scope: str | None
) -> tuple[CrmStore, KnowledgeBase, str, AsyncConnectionPool[Any]]:
    from adapters.bus.wake import hint
    from adapters.storage.postgres.embedded import EmbeddedPostgres
    from adapters.storage.postgres.knowledge import PostgresKnowledgeBase
    from adapters.storage.postgres.migrate import migrate
    from adapters.storage.postgres.pool import open_pool, reset_schema
    from adapters.storage.postgres.store import PostgresStore

    url = settings.database_url
    label = "postgres"
    if url is None:
        server = EmbeddedPostgres(Path(settings.data_dir) / "pg")
        url = server.start()
        stack.callback(server.stop)
        label = "postgres (embedded)"
    timeout = settings.database_connect_timeout
    if scope is not None:
        setup = await open_pool(url, max_size=1, connect_timeout=timeout)
        try:
            await reset_schema(setup, scope)
        finally:
            await setup.close()
    pool = await open_pool(
        url, connect_timeout=timeout, schema=scope, local=settings.database_url is None
    )
    stack.push_async_callback(pool.close)
    stack.push_async_callback(hint(pool).close)  # a wake-up in flight, before the pool
    await migrate(pool)
    knowledge = PostgresKnowledgeBase(pool, embedder)
    if settings.kb_threshold is not None:
        knowledge.calibration = with_cut(knowledge.calibration, settings.kb_threshold)
    return PostgresStore(pool), knowledge, label, pool


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
    scope: str | None = None,
    consume: Sequence[str] = (),
    reports: ReportStore | None = None,
    senders: Mapping[Channel, ChannelSender] | None = None,
    queue_replies: bool = False,
    gmail_client: GmailClient | None = None,
    queries: ReportQueries | None = None,
) -> Runtime:
    """`scope` names an isolated PostgreSQL schema, emptied first (see EVAL_SCOPE);
    `consume` the topics a worker in this process will consume (none: publish only);
    `queue_replies` (the service) stores every reply with an `fte.outbound` event for the
    channel senders (`senders`, default `make_senders`) instead of sending inline."""
    stack = AsyncExitStack()
    pool: AsyncConnectionPool[Any] | None = None
    memory_store: InMemoryStore | None = None
    outbox_store: CrmStore | None = None  # the store whose outbox the configured bus reads
    try:
        context = load_context(settings.context_dir)
        # One embedder for the knowledge base and the rules' `similar_to` conditions
        # (their thresholds are calibrated for it; another model refuses to load).
        embedder = make_embedder(settings)
        _close_on_exit(stack, embedder)
        if policy is None:
            policy = PolicyEngine(load_rules(settings.rules_dir), embedder=embedder)
            stack.callback(policy.close)
        storage = "memory"
        if store is None or knowledge is None:
            if settings.storage == "memory":
                # explicit opt-in (FTE_STORAGE=memory): nothing persists
                from fte_core.testing.knowledge import InMemoryKnowledgeBase
                from fte_core.testing.store import InMemoryStore

                memory_store = InMemoryStore()
                store, knowledge = store or memory_store, knowledge or InMemoryKnowledgeBase()
            else:
                pg_store, pg_kb, storage, pool = await _postgres(settings, stack, embedder, scope)
                store, knowledge = store or pg_store, knowledge or pg_kb
                if settings.bus in ("postgres", "kafka"):  # both relay the outbox
                    outbox_store = pg_store
        report = None
        if ingest:
            report = await knowledge.ingest(
                KB_DOCUMENT, chunk_markdown(KB_DOCUMENT, context.product_docs)
            )
        if responder is None:
            responder = make_responder(settings)
            _close_on_exit(stack, responder)
        if consume:  # this process answers messages: load now what the first would wait for
            await asyncio.to_thread(_warm, responder)
        if fallback is None and responder.name != "offline":
            fallback = OfflineResponder()
        if pool is None and settings.bus == "postgres":
            settings = msgspec.structs.replace(settings, bus="memory")  # in-memory storage
        buses = await make_bus(settings, pool, stack, topics=consume)
        if memory_store is not None and store is memory_store:
            memory_store.on_announce = buses.bus.publish  # memory mode: intake feeds the bus
            outbox_store = memory_store
        bus = bus or buses.bus
        records = _records(pool, store, settings, buses)
        reports = records.reports if reports is None else reports
        queries = records.queries if queries is None else queries
        secret = token_secret(settings)
        base = settings.base_url

        def status_link(number: str) -> str:
            return f"{base}/status/{number}?token={ticket_token(secret, number)}"

        agent = Agent(
            policy=policy,
            context=context,
            store=store,
            knowledge=knowledge,
            responder=responder,
            fallback=fallback,
            bus=bus,
            sender=sender,
            config=AgentConfig(
                thread_window=timedelta(hours=settings.thread_window_hours),
                acknowledge_every=timedelta(hours=settings.acknowledge_hours),
                status_link=status_link,
                queue_replies=queue_replies,
                parallel=settings.worker_parallel,
                # what the store queues reaches the agent's bus: a reply's events ride along
                events_with_replies=store is outbox_store and bus is buses.bus,
            ),
        )
        gmail = make_gmail(settings.gmail, records.mailboxes, agent.submit, client=gmail_client)
        if senders is None:
            senders = make_senders(settings, gmail_client=gmail.client)
        outbound = Outbound(store=store, ledger=records.deliveries, senders=senders, bus=bus)
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
        token_secret=secret,
        buses=buses,
        reports=reports,
        outbound=outbound,
        mailboxes=records.mailboxes,
        gmail=gmail,
        queries=queries,
        notes=records.notes,
        operations=records.operations,
        _stack=stack,
    )


@dataclass(slots=True)
class Buses:
    """The event bus as configured (FTE_BUS): where events are published, what a worker
    consumes, and, with Kafka, the outbox relay to run beside the worker."""

    kind: str  # postgres | kafka | memory
    bus: EventBus
    consumer: EventConsumer | None  # None: this process only publishes
    relay: OutboxRelay | None = None


async def make_bus(
    settings: Settings,
    pool: AsyncConnectionPool[Any] | None,
    stack: AsyncExitStack,
    *,
    topics: Sequence[str] = (events.INBOUND,),
) -> Buses:
    """Build and start the configured bus; `stack` closes it (consumer first).

    postgres (default): the outbox table is the queue. kafka: publishers write the outbox
    (one transaction with their data), the relay moves rows to Kafka, workers consume
    Kafka; without PostgreSQL storage events go to Kafka directly. memory: one process.
    """
    retry = RetryPolicy(max_attempts=settings.bus_max_attempts)
    if settings.bus == "memory":
        memory = MemoryBus(retry, visibility_timeout=settings.bus_visibility_timeout)
        if not topics:
            return Buses(kind="memory", bus=memory, consumer=None)
        consumer: EventConsumer = memory.consumer(topics)
        stack.push_async_callback(consumer.close)
        return Buses(kind="memory", bus=memory, consumer=consumer)
    if settings.bus == "postgres":
        if pool is None:
            raise ConfigError("FTE_BUS: postgres needs PostgreSQL storage (FTE_STORAGE)")
        from adapters.bus.postgres import PostgresBus

        queue = PostgresBus(pool)
        if not topics:
            return Buses(kind="postgres", bus=queue, consumer=None)
        consumer = queue.consumer(
            topics, retry=retry, visibility_timeout=settings.bus_visibility_timeout
        )
        stack.push_async_callback(consumer.close)
        return Buses(kind="postgres", bus=queue, consumer=consumer)
    return await _kafka(settings, pool, stack, topics, retry)


async def _kafka(
    settings: Settings,
    pool: AsyncConnectionPool[Any] | None,
    stack: AsyncExitStack,
    topics: Sequence[str],
    retry: RetryPolicy,
) -> Buses:
    from adapters.bus.kafka import KafkaBus, KafkaConfig, ensure_topics
    from adapters.bus.kafka_consumer import KafkaConsumer
    from adapters.bus.postgres import PostgresBus
    from adapters.bus.relay import OutboxRelay

    if not settings.kafka_bootstrap:
        raise ConfigError("FTE_KAFKA_BOOTSTRAP: required when FTE_BUS=kafka")
    config = KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        topic_prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        group=settings.kafka_group,
        idempotent=settings.kafka_idempotent,
    )
    await ensure_topics(config)
    producer = KafkaBus(config)
    await producer.start()
    stack.push_async_callback(producer.stop)
    consumer: EventConsumer | None = None
    if topics:
        consumer = KafkaConsumer(config, topics, producer, retry=retry)
        await consumer.start()
        stack.push_async_callback(consumer.close)
    if pool is None:
        return Buses(kind="kafka", bus=producer, consumer=consumer)
    relay = OutboxRelay(pool, producer)
    return Buses(kind="kafka", bus=PostgresBus(pool), consumer=consumer, relay=relay)
