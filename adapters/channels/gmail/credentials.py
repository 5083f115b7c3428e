"""Gmail API credentials: a service account acting as the mailbox (domain-wide
delegation, Google Workspace), or a user's OAuth token file (a consumer Gmail account).

Only paths are given here; the service reads them from the environment.
"""

from __future__ import annotations

from collections.abc import Callable

import httplib2
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient import discovery

from adapters.channels.gmail.api import Service
from fte_core.errors import ConfigError

# read mail, send replies, watch the mailbox; never delete permanently
SCOPES = ("https://www.googleapis.com/auth/gmail.modify",)


def load_credentials(
    mailbox: str, *, service_account_file: str | None = None, token_file: str | None = None
) -> Credentials:
    """ConfigError naming the setting when the file is missing or not what it should be."""
    if service_account_file:
        from google.oauth2 import service_account

        try:
            load = service_account.Credentials.from_service_account_file
            delegated: Credentials = load(service_account_file, scopes=SCOPES, subject=mailbox)  # type: ignore[no-untyped-call]
        except (OSError, ValueError, GoogleAuthError) as exc:
            raise ConfigError(
                f"GMAIL_SERVICE_ACCOUNT_FILE: not a service account key: {exc}"
            ) from exc
        return delegated
    if token_file:
        from google.oauth2.credentials import Credentials as UserCredentials

        try:
            read = UserCredentials.from_authorized_user_file
            user: Credentials = read(token_file, list(SCOPES))  # type: ignore[no-untyped-call]
        except (OSError, ValueError, GoogleAuthError) as exc:
            raise ConfigError(f"GMAIL_TOKEN_FILE: not an OAuth token file: {exc}") from exc
        return user
    raise ConfigError("GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE is required for Gmail")


def service_factory(credentials: Credentials, *, timeout: float = 30.0) -> Callable[[], Service]:
    """Builds Gmail services from the bundled discovery document (no discovery request),
    each on its own HTTP connection (httplib2 is not thread-safe)."""

    def build() -> Service:
        http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
        return discovery.build(
            "gmail", "v1", http=http, static_discovery=True, cache_discovery=False
        )

    return build
