"""The connection pool every PostgreSQL adapter shares."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from fte_core.errors import StorageError

log = logging.getLogger(__name__)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Register pgvector's types when the extension exists. Before the first migration it
    does not, and the adapters only send vectors as text literals, so a connection made
    then still works."""
    try:
        await register_vector_async(conn)
    except psycopg.ProgrammingError:
        log.debug("vector extension not installed yet; pgvector types not registered")


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """An open pool of autocommit connections (adapters open explicit transactions)."""
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=_configure,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
    )
    try:
        await pool.open(wait=True, timeout=30.0)
    except psycopg.Error as exc:
        await pool.close()
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
    return pool


@asynccontextmanager
async def connection(
    pool: AsyncConnectionPool[Any], what: str
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection whose driver errors surface as StorageError naming `what`."""
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.Error as exc:
        raise StorageError(f"{what}: {exc}") from exc
