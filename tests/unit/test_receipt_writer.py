"""The form's group commit: every post waits for the commit holding its receipt, and a
failed write reaches every post of its batch (none is left waiting, none told "201")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from adapters.storage.postgres.receipts import ReceiptWriter
from adapters.storage.postgres.rows import Conn
from fte_core.errors import StorageError
from fte_core.models import Channel, InboundMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def form(n: int) -> InboundMessage:
    return InboundMessage(
        channel=Channel.WEB_FORM,
        provider_message_id=f"form-{n}",
        text="How do I export to CSV?",
        received_at=T0,
        sender_email=f"p{n}@example.com",
    )


async def test_a_failed_write_fails_every_post_that_waited_for_it() -> None:
    attempts: list[int] = []

    @asynccontextmanager
    async def unavailable() -> AsyncIterator[Conn]:
        attempts.append(1)
        raise StorageError("PostgreSQL: the database system is shutting down")
        yield  # pragma: no cover - an async generator needs one

    writer = ReceiptWriter(unavailable)
    results = await asyncio.gather(
        *(writer.keep(form(n), lambda number: number.encode(), f"k{n}", T0) for n in range(5)),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [StorageError] * 5
    assert "shutting down" in str(results[0])
    assert len(attempts) <= 2  # posts that arrived together were written together
    again = await asyncio.gather(
        writer.keep(form(9), lambda number: number.encode(), "k9", T0), return_exceptions=True
    )
    assert isinstance(again[0], StorageError)  # the writer is not stuck after a failure
