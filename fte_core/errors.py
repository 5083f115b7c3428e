"""The exception tree. Every error the library raises is an FteError.

FteError
├── ConfigError            bad settings or context files
├── RuleError              a rule file is invalid (file, line, rule id)
│   └── RuleLimitError     a rule set exceeds the engine's safe limits
├── PolicyError            both evaluators failed (the pipeline escalates)
├── ValidationError        malformed input (names the field)
├── NotFound               unknown ticket, customer, conversation or message
├── InvalidTransition      a ticket status move the lifecycle forbids
├── InProgress             another worker is deciding this message now (retry later)
├── StorageError           the store failed (vendor error chained)
├── BusError               the event bus failed
├── ResponderError         the LLM failed after retries and fallbacks
└── DeliveryError          a channel sender failed (retried with backoff)
    └── DeliveryRejected   the provider refused for good (`code`): never retried
"""

from __future__ import annotations

import re


class FteError(Exception):
    """Base of every error raised by fte_core and its adapters."""


class ConfigError(FteError):
    pass


class RuleError(FteError):
    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule_id: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.rule_id = rule_id
        self.detail = message
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        rule = f"rule {rule_id!r}: " if rule_id else ""
        super().__init__(f"{prefix}{rule}{message}")


class RuleLimitError(RuleError):
    pass


class PolicyError(FteError):
    pass


class ValidationError(FteError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class NotFound(FteError):
    pass


class InvalidTransition(FteError):
    pass


class InProgress(FteError):
    """Another copy of the message is being decided: a worker retries it later, and then
    finds the decision stored (nothing is done twice)."""


class StorageError(FteError):
    pass


class BusError(FteError):
    pass


class ResponderError(FteError):
    pass


class DeliveryError(FteError):
    """A send that did not go through: rate limits, provider outages and network errors.
    Retried with backoff; what the provider already accepted is never sent again."""


class DeliveryRejected(DeliveryError):
    """The provider refused the message for good (e.g. Twilio 63016: outside WhatsApp's
    24-hour window). Recorded on the reply, never retried; a person takes the ticket."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.I)
_KEY_PASSWORD = re.compile(r"\b(?P<key>password|passwd|pwd)\s*=\s*(?:'[^']*'|\"[^\"]*\"|\S+)", re.I)


def redact(text: str) -> str:
    """The text with passwords in URLs (`scheme://user:***@`) and in `password=...`
    connection strings masked: error messages and logs may quote a connection string."""
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    return _KEY_PASSWORD.sub(r"\g<key>=***", text)
