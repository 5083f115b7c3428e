"""PostgresReports: the operators' reports (migration 0009), newest first per kind."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from adapters.storage.postgres.pool import connection
from adapters.storage.postgres.rows import fetch_one
from fte_core.errors import StorageError
from fte_core.ports import ReportKind, StoredReport

_COLUMNS = "id, kind, title, created_at, body::text, html"


def _report(row: tuple[Any, ...]) -> StoredReport:
    return StoredReport(
        id=row[0], kind=row[1], title=row[2], created_at=row[3], body=row[4].encode(), html=row[5]
    )


class PostgresReports:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def save_report(
        self, kind: ReportKind, title: str, body: bytes, html: str
    ) -> StoredReport:
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise StorageError(f"report body: not a JSON document ({exc})") from exc
        async with connection(self._pool, "save report") as conn:
            cursor = await conn.execute(
                f"INSERT INTO reports (kind, title, body, html) VALUES (%s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (kind, title, Jsonb(document), html),
            )
            row = await fetch_one(cursor, "report insert")
        return _report(row)

    async def latest_report(self, kind: ReportKind) -> StoredReport | None:
        found = await self.reports(kind, limit=1)
        return found[0] if found else None

    async def reports(self, kind: ReportKind, limit: int = 20) -> list[StoredReport]:
        async with connection(self._pool, "read reports") as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM reports WHERE kind = %s"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (kind, limit),
            )
            return [_report(row) for row in await cursor.fetchall()]
