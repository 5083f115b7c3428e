"""The ReportStore contract, over the in-memory fake and PostgreSQL."""

from __future__ import annotations

import msgspec
import pytest

from fte_core.errors import StorageError
from fte_core.ports import ReportStore
from fte_core.testing.reports import InMemoryReports


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def reports(request: pytest.FixtureRequest) -> ReportStore:
    if request.param == "memory":
        return InMemoryReports()
    from adapters.storage.postgres.reports import PostgresReports

    return PostgresReports(request.getfixturevalue("pg_pool"))


async def test_latest_per_kind_newest_first(reports: ReportStore) -> None:
    assert await reports.latest_report("digest") is None
    first = await reports.save_report("digest", "Digest 1", b'{"day": 1}', "<p>1</p>")
    await reports.save_report("shadow", "Shadow", b'{"changes": []}', "<p>s</p>")
    second = await reports.save_report("digest", "Digest 2", b'{"day": 2}', "<p>2</p>")
    latest = await reports.latest_report("digest")
    assert latest is not None
    assert (latest.id, latest.html) == (second.id, "<p>2</p>")
    assert msgspec.json.decode(latest.body) == {"day": 2}
    assert [r.id for r in await reports.reports("digest")] == [second.id, first.id]
    assert [r.title for r in await reports.reports("shadow")] == ["Shadow"]
    assert await reports.reports("learning") == []


async def test_body_must_be_json(reports: ReportStore) -> None:
    with pytest.raises(StorageError, match="report body"):
        await reports.save_report("digest", "Bad", b"{not json", "")
