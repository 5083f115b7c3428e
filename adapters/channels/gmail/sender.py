"""GmailSender: replies go out from the mailbox, in the customer's Gmail thread.

Gmail files a sent message into a thread when the request names the threadId and the
message's References / In-Reply-To and subject match it; so the answered message's
Message-ID, References and Subject are read back from Gmail (the inbound message keeps
only Gmail's ids) and the reply carries "Re: <subject>", In-Reply-To and References.
"""

from __future__ import annotations

import base64
import email.errors
import logging
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

import msgspec

from adapters.channels.gmail.api import GmailClient
from adapters.channels.gmail.errors import GmailError, GmailSendRejected, send_error
from fte_core.models import DeliveryStatus, Reply
from fte_core.ports import DeliveryResult, DeliveryTarget

log = logging.getLogger(__name__)

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|réf|ref)\s*(\[\d+\])?\s*:", re.I)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_MAX_REFERENCES = 20  # the newest ones; a long thread would grow the header without bound
DEFAULT_SUBJECT = "Your support request"


class Original(msgspec.Struct, frozen=True, kw_only=True):
    """The answered message's threading headers."""

    message_id: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None


class GmailSender:
    """ChannelSender for email (fte_core.ports)."""

    def __init__(self, client: GmailClient, *, from_name: str | None = None) -> None:
        self.client = client
        self.from_name = from_name

    async def send(self, reply: Reply, target: DeliveryTarget) -> DeliveryResult:
        original = await self._original(target)
        raw = compose(
            reply,
            target,
            original,
            mailbox=self.client.mailbox,
            from_name=self.from_name,
        )
        sent_id = await self.client.send(raw, target.thread_ref)
        return DeliveryResult(provider_message_ids=(sent_id,), status=DeliveryStatus.SENT)

    async def _original(self, target: DeliveryTarget) -> Original:
        """Threading headers of the answered Gmail message (none for another channel's)."""
        if not (target.thread_ref and target.in_reply_to):
            return Original(subject=target.subject)
        try:
            found = await self.client.headers(
                target.in_reply_to, ["Message-ID", "References", "Subject"]
            )
        except GmailError as exc:
            if exc.status != 404:
                raise send_error(
                    exc.operation, exc.detail, status=exc.status, retryable=exc.retryable
                ) from exc
            log.warning("answered message %s is gone: replying without it", target.in_reply_to)
            return Original(subject=target.subject)
        message_id = _MESSAGE_ID.search(found.get("message-id", ""))
        return Original(
            message_id=message_id.group(0) if message_id else None,
            references=tuple(_MESSAGE_ID.findall(found.get("references", ""))),
            subject=found.get("subject") or target.subject,
        )


def reply_subject(subject: str | None) -> str:
    """ "Re: <subject>", once ("Re: Re:" never grows)."""
    text = " ".join((subject or "").split())
    if not text:
        return f"Re: {DEFAULT_SUBJECT}"
    return text if _REPLY_PREFIX.match(text) else f"Re: {text}"


def compose(
    reply: Reply,
    target: DeliveryTarget,
    original: Original,
    *,
    mailbox: str,
    from_name: str | None,
) -> str:
    """The reply as Gmail's `raw` (base64url of the RFC 5322 message)."""
    message = EmailMessage(policy=policy.SMTP)
    try:
        message["From"] = Address(display_name=from_name or "", addr_spec=mailbox)
        message["To"] = Address(addr_spec=target.address)
        message["Subject"] = reply_subject(original.subject)
        if original.message_id:
            references = [r for r in original.references if r != original.message_id]
            chain = [*references[-(_MAX_REFERENCES - 1) :], original.message_id]
            message["In-Reply-To"] = original.message_id
            message["References"] = " ".join(chain)
        message.set_content("\n\n".join(reply.parts) + "\n")
        data = message.as_bytes()
    except (ValueError, IndexError, TypeError, email.errors.MessageError) as exc:
        raise GmailSendRejected("compose", f"cannot build the reply: {exc}", status=None) from exc
    return base64.urlsafe_b64encode(data).decode("ascii")
