"""The support form's rules as the page's script receives them, and the words a customer
sees for each broken rule.

The numbers, choices and patterns come from service.forms and fte_core.identity, rendered
into the page as JSON, so the browser's checks and the server's can never drift apart;
the same messages are used for the script's checks and for the server's answer to a
plain form post.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import msgspec

from fte_core import identity
from service.forms import CATEGORIES, FIELDS, LIMITS, PRIORITIES

# What the customer reads next to each field; `noun` starts a length message.
LABELS: Mapping[str, str] = {
    "name": "Your name",
    "email": "Email address",
    "phone": "WhatsApp number (optional)",
    "subject": "Subject",
    "category": "Category",
    "priority": "Priority",
    "message": "Your message",
}
_NOUNS: Mapping[str, str] = {
    "name": "Your name",
    "email": "Your email address",
    "phone": "The phone number",
    "subject": "The subject",
    "category": "The category",
    "priority": "The priority",
    "message": "Your message",
}
_REQUIRED: Mapping[str, str] = {
    "name": "Enter your name.",
    "email": "Enter your email address.",
    "subject": "Enter a subject.",
    "category": "Choose a category.",
    "priority": "Choose a priority.",
    "message": "Tell us how we can help.",
}
CATEGORY_LABELS: Mapping[str, str] = {
    "general": "General question",
    "technical": "Technical problem",
    "account": "Account and sign-in",
    "billing": "Billing",
    "integrations": "Integrations",
    "feedback": "Feedback",
}
PRIORITY_LABELS: Mapping[str, str] = {"low": "Low", "normal": "Normal", "high": "High"}


class ClientRules(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the page's script needs to check the form exactly as parse_form does."""

    fields: tuple[str, ...]
    limits: dict[str, tuple[int, int]]
    categories: tuple[str, ...]
    priorities: tuple[str, ...]
    email_max: int
    email_pattern: str
    phone_punctuation: str
    phone_digits: str
    whitespace: str  # a character-class body: what Python's str.strip() removes
    messages: dict[str, dict[str, str]]


def messages() -> dict[str, dict[str, str]]:
    """Per field, per kind of error (required, short, long, invalid, country, text)."""
    out: dict[str, dict[str, str]] = {}
    for field in FIELDS:
        noun = _NOUNS[field]
        kinds = {"text": f"{noun} must be text.", "invalid": f"Check {noun.lower()}."}
        if field in _REQUIRED:
            kinds["required"] = _REQUIRED[field]
        if field in LIMITS:
            low, high = LIMITS[field]
            kinds["short"] = f"{noun} must be at least {low} characters."
            kinds["long"] = f"{noun} must be at most {high} characters."
        out[field] = kinds
    out["email"]["invalid"] = "Enter an email address like name@example.com."
    out["phone"]["country"] = "Start with + and the country code, like +44 7700 900123."
    out["phone"]["invalid"] = "Enter + and 8 to 15 digits, like +44 7700 900123."
    out["category"]["invalid"] = out["category"]["required"]
    out["priority"]["invalid"] = "Choose low, normal or high."
    return out


def error_kind(field: str, message: str) -> str:
    """Which of `messages()` a server message (service.forms) means."""
    if message == "is required":
        return "required"
    if message.startswith("must be at least"):
        return "short"
    if message.startswith("must be at most"):
        return "long"
    if message == "must be text":
        return "text"
    if field == "category" and message.startswith("must be one of"):
        return "required"
    if field == "phone" and "country code" in message:
        return "country"
    return "invalid"


def friendly_errors(fields: Mapping[str, str]) -> dict[str, str]:
    """The server's errors (FormErrors.fields) in the customer's words; an unknown field
    keeps its own message."""
    words = messages()
    order = {field: i for i, field in enumerate(FIELDS)}  # as the form shows them
    return {
        field: words[field].get(error_kind(field, message), message)
        if field in words
        else f"{field}: {message}"
        for field, message in sorted(fields.items(), key=lambda kv: order.get(kv[0], len(order)))
    }


@cache
def client_rules() -> ClientRules:
    return ClientRules(
        fields=FIELDS,
        limits=dict(LIMITS),
        categories=CATEGORIES,
        priorities=PRIORITIES,
        email_max=identity._MAX_EMAIL_LENGTH,
        email_pattern=js_pattern(identity._EMAIL.pattern),
        phone_punctuation=js_pattern(identity._PHONE_PUNCTUATION.pattern),
        phone_digits=js_pattern(identity._DIGITS.pattern),
        whitespace=_whitespace_class(),
        messages=messages(),
    )


def rules_json() -> str:
    """For a <script type="application/json"> element: `<` escaped so no text can close it."""
    return msgspec.json.encode(client_rules()).decode().replace("<", "\\u003c")


def js_pattern(pattern: str) -> str:
    """A Python `re` pattern as a JavaScript one for the `u` flag with Python's meaning of
    \\s (str.isspace) and \\d (any decimal digit, as Python's str patterns mean them)."""
    space = _whitespace_class()
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            if escape == "\\s":
                out.append(space if in_class else f"[{space}]")
            elif escape == "\\d":
                out.append("\\p{Nd}")
            else:
                out.append(escape)
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


@cache
def _whitespace_class() -> str:
    """Python's whitespace (no code point above the BMP is whitespace) as JS ranges."""
    spaces = [c for c in range(0x10000) if chr(c).isspace()]
    ranges: list[tuple[int, int]] = []
    for c in spaces:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "".join(f"\\u{{{a:x}}}" if a == b else f"\\u{{{a:x}}}-\\u{{{b:x}}}" for a, b in ranges)
