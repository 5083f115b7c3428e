"""The web support form: its fields and the server's rules for them, shared by the JSON
API, the plain-HTML post and (mirrored in the page's script) the browser's checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from fte_core.errors import ValidationError
from fte_core.identity import normalize_email, normalize_phone

Category = Literal["general", "technical", "account", "billing", "integrations", "feedback"]
FormPriority = Literal["low", "normal", "high"]
CATEGORIES: tuple[str, ...] = (
    "general",
    "technical",
    "account",
    "billing",
    "integrations",
    "feedback",
)
PRIORITIES: tuple[str, ...] = ("low", "normal", "high")

# (min, max) characters after trimming; the page's script enforces the same numbers
LIMITS: Mapping[str, tuple[int, int]] = {
    "name": (2, 100),
    "email": (3, 254),
    "subject": (5, 200),
    "message": (10, 5000),
}
FIELDS = ("name", "email", "phone", "subject", "category", "priority", "message")


class SupportForm(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    email: str
    subject: str
    category: Category
    message: str
    priority: FormPriority = "normal"
    phone: str | None = None


class FormErrors(ValidationError):
    """Every field that is wrong at once (a form shows them all), not only the first."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__(
            ", ".join(self.fields), "; ".join(f"{k}: {v}" for k, v in self.fields.items())
        )


def parse_form(raw: Mapping[str, object]) -> SupportForm:
    """Validate raw fields (JSON or form-encoded): unknown fields, wrong types, lengths,
    the email's and the phone's shape. Raises FormErrors naming each bad field."""
    errors: dict[str, str] = {}
    for key in raw:
        if key not in FIELDS:
            errors[key] = "unknown field"
    values: dict[str, str] = {}
    for key in FIELDS:
        value = raw.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            errors[key] = "must be text"
            continue
        values[key] = value.strip()
    for key, (low, high) in LIMITS.items():
        text = values.get(key, "")
        if not text:
            errors.setdefault(key, "is required")
        elif len(text) < low:
            errors.setdefault(key, f"must be at least {low} characters")
        elif len(text) > high:
            errors.setdefault(key, f"must be at most {high} characters")
    _check("email", values, errors, normalize_email)
    _check("phone", values, errors, normalize_phone)
    if values.get("category") not in CATEGORIES:
        errors.setdefault("category", f"must be one of {', '.join(CATEGORIES)}")
    if values.get("priority", "normal") not in PRIORITIES:
        errors.setdefault("priority", f"must be one of {', '.join(PRIORITIES)}")
    if errors:
        raise FormErrors(errors)
    return msgspec.convert(values, SupportForm)


def _check(key: str, values: dict[str, str], errors: dict[str, str], normalize: object) -> None:
    if key not in values or key in errors:
        return
    try:
        values[key] = normalize(values[key])  # type: ignore[operator]
    except ValidationError as exc:
        errors[key] = exc.detail
