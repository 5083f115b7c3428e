"""The Gmail channel's settings (GMAIL_* variables), part of service.settings.Settings.

Unset, the service runs without email: the webhook answers 503 saying what is missing and
`/api/v1/ready` shows the channel as not configured.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from fte_core.errors import ConfigError, ValidationError
from fte_core.identity import normalize_email

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


class GmailSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mailbox: str | None = None  # the support address the agent reads and answers from
    service_account_file: str | None = None  # key of a service account with delegation
    token_file: str | None = None  # or an OAuth authorized-user token file
    push_audience: str | None = None  # the push subscription's OIDC audience
    push_service_account: str | None = None  # the account Pub/Sub signs pushes as
    push_certs_url: str = GOOGLE_CERTS_URL
    topic: str | None = None  # projects/<project>/topics/<topic>, for `fte gmail watch`
    label: str = "INBOX"  # the label watched and read
    from_name: str | None = None  # display name on replies
    authserv_id: str = "mx.google.com"  # whose Authentication-Results prove a sender

    @property
    def api_configured(self) -> bool:
        return bool(self.mailbox and (self.service_account_file or self.token_file))

    def status(self) -> str:
        """For `/api/v1/ready`: configured, or what is missing."""
        missing = []
        if not self.push_audience:
            missing.append("GMAIL_PUSH_AUDIENCE")
        if not self.mailbox:
            missing.append("GMAIL_MAILBOX")
        if not (self.service_account_file or self.token_file):
            missing.append("GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE")
        if not missing:
            return f"configured ({self.mailbox})"
        return "not configured (set " + ", ".join(missing) + ")"


_ENV = {
    "GMAIL_MAILBOX": "mailbox",
    "GMAIL_SERVICE_ACCOUNT_FILE": "service_account_file",
    "GMAIL_TOKEN_FILE": "token_file",
    "GMAIL_PUSH_AUDIENCE": "push_audience",
    "GMAIL_PUSH_SERVICE_ACCOUNT": "push_service_account",
    "GMAIL_PUSH_CERTS_URL": "push_certs_url",
    "GMAIL_PUBSUB_TOPIC": "topic",
    "GMAIL_LABEL": "label",
    "GMAIL_FROM_NAME": "from_name",
    "GMAIL_AUTHSERV_ID": "authserv_id",
}

GMAIL_HELP = {
    "GMAIL_MAILBOX": "the support mailbox the agent reads and answers from",
    "GMAIL_SERVICE_ACCOUNT_FILE": "service account key with domain-wide delegation (Workspace)",
    "GMAIL_TOKEN_FILE": "or an OAuth authorized-user token file (a consumer account)",
    "GMAIL_PUSH_AUDIENCE": "the Pub/Sub push subscription's OIDC audience",
    "GMAIL_PUSH_SERVICE_ACCOUNT": "the service account Pub/Sub signs pushes as (checked if set)",
    "GMAIL_PUBSUB_TOPIC": "projects/<p>/topics/<t> that Gmail publishes to (fte gmail watch)",
    "GMAIL_LABEL": "the label watched and read [default: INBOX]",
    "GMAIL_FROM_NAME": "display name on replies",
}


def load_gmail_settings(env: Mapping[str, str]) -> GmailSettings:
    raw = {name: env[var].strip() for var, name in _ENV.items() if env.get(var, "").strip()}
    settings = msgspec.convert(raw, GmailSettings)
    if settings.mailbox is not None:
        try:
            settings = msgspec.structs.replace(settings, mailbox=normalize_email(settings.mailbox))
        except ValidationError as exc:
            raise ConfigError(f"GMAIL_MAILBOX: {exc.detail}") from exc
    if settings.service_account_file and settings.token_file:
        raise ConfigError("GMAIL_SERVICE_ACCOUNT_FILE and GMAIL_TOKEN_FILE: set only one")
    if not settings.push_certs_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError("GMAIL_PUSH_CERTS_URL: must be an https:// URL")
    return settings
