"""InMemoryReports: the ReportStore fake."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from fte_core.errors import StorageError
from fte_core.ports import ReportKind, StoredReport


class InMemoryReports:
    def __init__(self) -> None:
        self._reports: list[StoredReport] = []

    async def save_report(
        self, kind: ReportKind, title: str, body: bytes, html: str
    ) -> StoredReport:
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise StorageError(f"report body: not a JSON document ({exc})") from exc
        report = StoredReport(
            id=len(self._reports) + 1,
            kind=kind,
            title=title,
            created_at=datetime.now(UTC),
            body=body,
            html=html,
        )
        self._reports.append(report)
        return report

    async def latest_report(self, kind: ReportKind) -> StoredReport | None:
        found = await self.reports(kind, limit=1)
        return found[0] if found else None

    async def reports(self, kind: ReportKind, limit: int = 20) -> list[StoredReport]:
        mine = [r for r in self._reports if r.kind == kind]
        return sorted(mine, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]
