"""Time rules both CrmStore implementations share, so they stamp and refuse alike."""

from __future__ import annotations

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
