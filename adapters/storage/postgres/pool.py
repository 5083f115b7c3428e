"""The connection pool every PostgreSQL adapter shares."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fte_core.errors import StorageError, redact

log = logging.getLogger(__name__)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Register pgvector's types when the extension exists. Before the first migration it
    does not, and the adapters only send vectors as text literals, so a connection made
    then still works."""
    try:
        await register_vector_async(conn)
    except psycopg.ProgrammingError:
        log.debug("vector extension not installed yet; pgvector types not registered")


async def _configure_local(conn: psycopg.AsyncConnection[Any]) -> None:
    await _configure(conn)
    await _share_priority(conn)


async def _share_priority(conn: psycopg.AsyncConnection[Any]) -> None:
    """A server on this machine runs each session as its own process: give it this
    process's CPU priority, so a niced worker's queries are niced too instead of taking
    the CPU from the API's. Best effort: another user's server may refuse (logged)."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness <= 0:
        return
    cursor = await conn.execute("SELECT pg_backend_pid()")
    row = await cursor.fetchone()
    try:
        if row is not None and os.getpriority(os.PRIO_PROCESS, row[0]) < niceness:
            os.setpriority(os.PRIO_PROCESS, row[0], niceness)
    except OSError as exc:
        log.debug("database session %s keeps its CPU priority: %s", row, exc)


async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    schema: str | None = None,
    local: bool = False,
) -> AsyncConnectionPool:
    """An open pool of autocommit connections (adapters open explicit transactions).

    `schema` puts every table in that schema (before `public`, where pgvector lives): an
    isolated scope, e.g. for `fte eval`. Fails within `connect_timeout` seconds with one
    line that never quotes the password. `local`: the server runs on this machine (the
    embedded one); its sessions take this process's CPU priority.
    """
    options = "-c TimeZone=UTC" + (f" -c search_path={schema},public" if schema else "")
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=_configure_local if local else _configure,
        kwargs={
            "autocommit": True,
            "options": options,
            "connect_timeout": max(1, round(connect_timeout)),
        },
        reconnect_timeout=connect_timeout,
    )
    try:
        await pool.open(wait=True, timeout=connect_timeout)
    except (psycopg.Error, PoolTimeout) as exc:
        await pool.close()
        raise StorageError(
            f"cannot connect to PostgreSQL within {connect_timeout:g} s: {redact(str(exc))}"
        ) from None  # the driver's own message may quote the connection string
    except BaseException:  # cancelled (SIGTERM): its connecting workers must not linger
        await pool.close()
        raise
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
        raise StorageError(f"{what}: {redact(str(exc))}") from exc


async def reset_schema(pool: AsyncConnectionPool[Any], schema: str) -> None:
    """Empty an isolated scope: its schema dropped with everything in it, created anew."""
    if not schema.isidentifier():
        raise StorageError(f"not a schema name: {schema!r}")
    async with connection(pool, "PostgreSQL") as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        # pgvector belongs in public, shared by every scope; created from inside the scope
        # it would land there and vanish from everyone else's search path
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        await conn.execute(f"CREATE SCHEMA {schema}")
