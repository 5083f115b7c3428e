from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import sql

from adapters.storage.postgres.migrate import available_migrations, migrate
from tests.integration.conftest import with_database

pytestmark = pytest.mark.postgres

EXPECTED_TABLES = {
    "customers",
    "customer_identifiers",
    "merge_candidates",
    "conversations",
    "tickets",
    "messages",
    "knowledge_base",
    "channel_configs",
    "agent_metrics",
    "outbox",
    "dead_letters",
    "processed_messages",
    "mailbox_watermarks",
    "schema_migrations",
}


async def _empty_database(server_url: str, name: str) -> str:
    admin = await psycopg.AsyncConnection.connect(server_url, autocommit=True)
    async with admin:
        await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


async def _tables(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    cursor = await conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return {row[0] for row in await cursor.fetchall()}


async def test_migrations_apply_from_empty_and_rerun_is_a_no_op(pg_server_url: str) -> None:
    url = await _empty_database(pg_server_url, "fte_migrate_empty")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        applied = await migrate(conn)
        assert applied == [f"{m.version:04d}_{m.name}" for m in available_migrations()]
        assert await _tables(conn) >= EXPECTED_TABLES
        assert await migrate(conn) == []
        cursor = await conn.execute("SELECT count(*) FROM schema_migrations")
        assert await cursor.fetchone() == (len(applied),)
        cursor = await conn.execute("SELECT channel, tone FROM channel_configs ORDER BY channel")
        assert await cursor.fetchall() == [
            ("email", "formal"),
            ("web_form", "semi-formal"),
            ("whatsapp", "conversational"),
        ]


async def test_concurrent_migrators_apply_each_migration_once(pg_server_url: str) -> None:
    url = await _empty_database(pg_server_url, "fte_migrate_race")
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(f"{m.version:04d}_{m.name}" for m in available_migrations())


def test_migration_files_are_numbered_uniquely_in_order() -> None:
    """Numbers are assigned per feature branch, so they need not be contiguous."""
    versions = [m.version for m in available_migrations()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1
