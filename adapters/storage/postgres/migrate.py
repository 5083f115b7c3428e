"""Numbered SQL migrations (migrations/NNNN_name.sql), applied in order, once.

Each migration runs in its own transaction holding a transaction-level advisory lock, so
several service replicas starting at once apply each file exactly once and a failed file
leaves no half-applied schema behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from fte_core.errors import StorageError

log = logging.getLogger(__name__)

# Any constant shared by every migrator; "fte-migrate" as a 63-bit integer.
_LOCK_KEY = 0x6674652D6D696772
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("adapters.storage.postgres") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(
                Migration(version=int(match[1]), name=match[2], sql=entry.read_text("utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StorageError(f"duplicate migration versions: {versions}")
    return found


async def migrate(
    conn_or_pool: psycopg.AsyncConnection[Any] | AsyncConnectionPool,
) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    try:
        async with _connection(conn_or_pool) as conn:
            return await _apply_pending(conn)
    except psycopg.Error as exc:
        raise StorageError(f"migration failed: {exc}") from exc


async def _apply_pending(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    applied: list[str] = []
    for migration in available_migrations():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute(_CREATE_TABLE)
            cursor = await conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            )
            if await cursor.fetchone():
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


@asynccontextmanager
async def _connection(
    conn_or_pool: psycopg.AsyncConnection[Any] | AsyncConnectionPool,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    if isinstance(conn_or_pool, AsyncConnectionPool):
        async with conn_or_pool.connection() as conn:
            yield conn
    else:
        yield conn_or_pool
