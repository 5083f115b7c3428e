"""The service in-process over the in-memory fakes (API contract tests) and, for the
end-to-end tests, `fte serve` in a subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from service.state import ServiceState

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "a" * 40


def app_for(settings: Settings, *, max_body_bytes: int = 1_048_576) -> Litestar:
    @asynccontextmanager
    async def state() -> AsyncIterator[ServiceState]:
        runtime = await bootstrap(settings)
        try:
            yield ServiceState(runtime=runtime, admin_token=ADMIN, bus="memory")
        finally:
            await runtime.aclose()

    return create_app(state, max_body_bytes=max_body_bytes)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        storage="memory",
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        public_base_url="https://support.example.com",
        token_secret="s" * 40,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app_for(settings, max_body_bytes=64 * 1024)) as c:
        yield c
