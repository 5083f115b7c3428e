"""Time rules both CrmStore implementations share, so they stamp and refuse alike; and the
pipeline's stage timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from fte_core.errors import ValidationError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime, field: str) -> datetime:
    """Naive datetimes are ambiguous; refuse them rather than guess a zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "datetime must be timezone-aware")
    return value.astimezone(UTC)


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), as stage latencies
    are recorded."""
    return round((time.perf_counter() - started) * 1000, 3)
