"""Operators' notes on a ticket: the rules every TicketNotes implementation applies."""

from __future__ import annotations

from fte_core.errors import ValidationError

MAX_NOTE_CHARS = 5_000


def clean_note(author: str, text: str) -> tuple[str, str]:
    """(author, text) trimmed; ValidationError naming the field for an empty or oversize
    one, so both stores refuse alike."""
    name = " ".join(author.split())
    if not name:
        raise ValidationError("operator", "an operator name is required")
    body = text.strip()
    if not body:
        raise ValidationError("note", "the note must not be empty")
    if len(body) > MAX_NOTE_CHARS:
        raise ValidationError("note", f"the note is longer than {MAX_NOTE_CHARS} characters")
    return name[:120], body
