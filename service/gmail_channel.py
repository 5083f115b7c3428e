"""The Gmail channel as the service runs it, built from GMAIL_* settings by bootstrap.

Each part exists only when its settings do: the push verifier needs GMAIL_PUSH_AUDIENCE,
the API client (reading mail, sending replies) a mailbox and credentials. The google
libraries are imported only then, so a service without email never loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fte_core.ports import MailboxState
from service.settings_gmail import GmailSettings

if TYPE_CHECKING:
    from adapters.channels.gmail.api import GmailClient
    from adapters.channels.gmail.push import PushVerifier
    from adapters.channels.gmail.sender import GmailSender
    from adapters.channels.gmail.sync import MailboxSync, Submit


@dataclass(slots=True)
class GmailChannel:
    settings: GmailSettings
    verifier: PushVerifier | None = None  # None: GMAIL_PUSH_AUDIENCE unset
    client: GmailClient | None = None  # None: no mailbox or no credentials
    sync: MailboxSync | None = None  # with a client


def make_gmail_client(settings: GmailSettings) -> GmailClient | None:
    """The mailbox's API client, or None when GMAIL_MAILBOX or credentials are unset."""
    if not settings.api_configured or settings.mailbox is None:
        return None
    from adapters.channels.gmail.api import GmailClient
    from adapters.channels.gmail.credentials import load_credentials, service_factory

    credentials = load_credentials(
        settings.mailbox,
        service_account_file=settings.service_account_file,
        token_file=settings.token_file,
    )
    return GmailClient(settings.mailbox, service_factory(credentials))


def make_gmail_sender(
    settings: GmailSettings, client: GmailClient | None = None
) -> GmailSender | None:
    client = client or make_gmail_client(settings)
    if client is None:
        return None
    from adapters.channels.gmail.sender import GmailSender

    return GmailSender(client, from_name=settings.from_name)


def make_gmail(
    settings: GmailSettings,
    state: MailboxState,
    submit: Submit,
    *,
    client: GmailClient | None = None,
) -> GmailChannel:
    channel = GmailChannel(settings=settings)
    if settings.push_audience:
        from adapters.channels.gmail.push import PushVerifier

        channel.verifier = PushVerifier(
            settings.push_audience,
            service_account=settings.push_service_account,
            certs_url=settings.push_certs_url,
        )
    channel.client = client or make_gmail_client(settings)
    if channel.client is not None:
        from adapters.channels.gmail.sync import MailboxSync

        channel.sync = MailboxSync(
            channel.client,
            state,
            submit,
            label_id=settings.label,
            authserv_id=settings.authserv_id,
        )
    return channel
