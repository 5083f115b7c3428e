"""TwilioSender: the ChannelSender for WhatsApp, through twilio's REST `Client`.

twilio's client is synchronous (requests), so each call runs in a worker thread. Errors are
classified for fte_core.delivery: rate limits (429), Twilio's own failures (5xx) and the
network are DeliveryError (retried with backoff); any other refusal is DeliveryRejected
with Twilio's error code (e.g. 63016, outside the 24-hour window), recorded and never
retried.
"""

from __future__ import annotations

import asyncio
import logging

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from adapters.channels.whatsapp.parser import PREFIX
from fte_core.errors import DeliveryError, DeliveryRejected
from fte_core.models import DeliveryStatus, Reply
from fte_core.ports import DeliveryResult, DeliveryTarget

log = logging.getLogger(__name__)

TIMEOUT = 15.0  # seconds per request; a send never holds a reply longer than its lease
# Statuses worth trying again: rate limited, timed out, credentials being rotated.
_RETRY_STATUSES = frozenset({401, 403, 408, 409, 429})


class TwilioSender:
    """Sends each part as one WhatsApp message, in order, from `from_number` (E.164)."""

    def __init__(self, client: Client, from_number: str, status_callback: str | None) -> None:
        self._client = client
        self._from = PREFIX + from_number
        self._callback = status_callback

    @classmethod
    def connect(
        cls,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        status_callback: str | None = None,
        api_base: str | None = None,
    ) -> TwilioSender:
        """`api_base` replaces https://api.twilio.com (a proxy, or a local test server)."""
        http = TwilioHttpClient(timeout=TIMEOUT, logger=logging.getLogger("twilio.http_client"))
        client = Client(account_sid, auth_token, http_client=http)
        if api_base:
            client.api.base_url = api_base.rstrip("/")
        return cls(client, from_number, status_callback)

    async def send(self, reply: Reply, target: DeliveryTarget) -> DeliveryResult:
        """One Twilio message per part, in order. A part that fails raises at once: the
        parts before it went out (fte_core.delivery sends one part per call and records
        each id, so nothing is sent twice)."""
        ids = []
        for part in reply.parts:
            ids.append(await asyncio.to_thread(self._create, part, target.address))
        return DeliveryResult(provider_message_ids=tuple(ids), status=DeliveryStatus.SENT)

    def _create(self, body: str, to: str) -> str:
        try:
            message = self._client.messages.create(
                to=PREFIX + to,
                from_=self._from,
                body=body,
                status_callback=self._callback,
            )
        except TwilioRestException as exc:
            raise classify(exc) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise DeliveryError(f"twilio unreachable: {type(exc).__name__}") from exc
        sid = message.sid
        if not isinstance(sid, str) or not sid:
            raise DeliveryError("twilio accepted the message without an id")
        return sid


def classify(exc: TwilioRestException) -> DeliveryError:
    """Retryable (DeliveryError) or refused for good (DeliveryRejected, with the code)."""
    code = str(exc.code) if exc.code is not None else None
    text = f"twilio {exc.status}" + (f" error {code}" if code else "") + f": {exc.msg}"
    if exc.status >= 500 or exc.status in _RETRY_STATUSES:
        return DeliveryError(text)
    return DeliveryRejected(text, code=code)
