"""Twilio's webhook signature (X-Twilio-Signature), checked with twilio's own validator
against the public URL Twilio called: behind a proxy the request's own URL differs, so the
URL is built from FTE_PUBLIC_BASE_URL and the path."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from fte_core.errors import FteError


class SignatureError(FteError):
    """The request is not signed by Twilio with our auth token (HTTP 403)."""


def webhook_url(base_url: str, path: str, query: str = "") -> str:
    """The URL Twilio signed: the public base, the path, and the query string if any."""
    url = base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def check_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> None:
    """Raises SignatureError unless `signature` is Twilio's HMAC of `url` and `params`."""
    if not signature:
        raise SignatureError("the X-Twilio-Signature header is missing")
    if not RequestValidator(auth_token).validate(url, dict(params), signature):
        raise SignatureError("the X-Twilio-Signature does not match this request")
