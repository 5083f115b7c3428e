"""In-memory records (deliveries, notes, reports...) are the explicit opt-in's, never a
default: a caller that passes its own store without PostgreSQL must say storage=memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fte_core import language
from fte_core.errors import ConfigError
from fte_core.ports import Answer
from fte_core.testing import FunctionResponder
from fte_core.testing.knowledge import InMemoryKnowledgeBase
from fte_core.testing.store import InMemoryStore
from service.bootstrap import bootstrap
from service.handlers import TOPICS
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, storage: str) -> Settings:
    return Settings(
        storage=storage,  # type: ignore[arg-type]
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        embedder="hashing",
        bus="memory",
        token_secret="k" * 40,
    )


async def test_injected_stores_without_the_memory_opt_in_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FTE_STORAGE=memory"):
        await bootstrap(
            settings(tmp_path, "postgres"),
            store=InMemoryStore(),
            knowledge=InMemoryKnowledgeBase(),
            ingest=False,
        )


async def test_injected_stores_with_the_memory_opt_in_start(tmp_path: Path) -> None:
    runtime = await bootstrap(
        settings(tmp_path, "memory"),
        store=InMemoryStore(),
        knowledge=InMemoryKnowledgeBase(),
        ingest=False,
    )
    try:
        assert runtime.agent.store is runtime.store
        # an injected store's outbox feeds no bus: the reply's events are published
        assert not runtime.agent.config.events_with_replies
    finally:
        await runtime.aclose()


async def test_the_memory_store_feeds_its_bus_so_events_ride_with_replies(
    tmp_path: Path,
) -> None:
    runtime = await bootstrap(settings(tmp_path, "memory"), ingest=False)
    try:
        assert isinstance(runtime.store, InMemoryStore)
        assert runtime.store.on_announce is not None
        assert runtime.agent.config.events_with_replies
    finally:
        await runtime.aclose()


class WarmedResponder(FunctionResponder):
    def __init__(self) -> None:
        super().__init__(lambda _: Answer(text="hello", passage_ids=(), responder="function"))
        self.warmed = 0

    def warm(self) -> None:
        self.warmed += 1


@pytest.mark.parametrize("consume", [TOPICS, ()])
async def test_a_consuming_process_loads_models_before_its_first_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, consume: tuple[str, ...]
) -> None:
    """The first message must not wait seconds for lingua's models or litellm's import;
    a process that only publishes (the API beside its worker child) loads neither."""
    monkeypatch.setattr(language, "_detector", None)
    responder = WarmedResponder()
    runtime = await bootstrap(
        settings(tmp_path, "memory"),
        store=InMemoryStore(),
        knowledge=InMemoryKnowledgeBase(),
        responder=responder,
        ingest=False,
        consume=consume,
    )
    try:
        assert responder.warmed == (1 if consume else 0)
        assert (language._detector is not None) == bool(consume)
    finally:
        await runtime.aclose()
