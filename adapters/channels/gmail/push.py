"""Pub/Sub push for Gmail: the OIDC bearer token verified.

Pub/Sub signs each push with a Google-issued ID token for the subscription's service
account; google-auth checks its signature against Google's certificates (cached as their
Cache-Control allows, re-fetched when a new key id appears), its expiry and its audience;
the issuer and the service account are checked here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

import msgspec
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport import Response
from google.auth.transport.requests import Request

from adapters.channels.gmail.errors import PushAuthError, PushCertsUnavailable

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
_MAX_AGE = re.compile(r"max-age=(\d+)")
_DEFAULT_CACHE_SECONDS = 3600.0
_REFETCH_AFTER = 30.0  # an unknown key id re-fetches the certificates at most this often


class PushClaims(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    audience: str
    email: str | None


Fetch = Callable[[str], Response]


class PushVerifier:
    """Verifies `Authorization: Bearer <ID token>` on a push; PushAuthError otherwise."""

    def __init__(
        self,
        audience: str,
        *,
        service_account: str | None = None,
        certs_url: str = GOOGLE_CERTS_URL,
        clock_skew_seconds: int = 10,
        fetch: Fetch | None = None,
    ) -> None:
        self.audience = audience
        self.service_account = service_account.lower() if service_account else None
        self.certs_url = certs_url
        self.clock_skew_seconds = clock_skew_seconds
        self._fetch = fetch or _http_fetch
        self._certs: Mapping[str, str] = {}
        self._fetched_at = float("-inf")
        self._expires_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, authorization: str | None) -> PushClaims:
        token = _bearer(authorization)
        key_id = _key_id(token)
        certs = await self._certificates(key_id)
        try:
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                token,
                certs=certs,
                audience=self.audience,
                clock_skew_in_seconds=self.clock_skew_seconds,
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise PushAuthError(f"push token rejected: {exc}") from exc
        return self._check(claims)

    def _check(self, claims: Mapping[str, object]) -> PushClaims:
        issuer = claims.get("iss")
        if issuer not in ISSUERS:
            raise PushAuthError(f"push token from an unexpected issuer: {issuer!r}")
        email = claims.get("email")
        if self.service_account is not None:
            if not isinstance(email, str) or email.lower() != self.service_account:
                raise PushAuthError("push token for another service account")
            if claims.get("email_verified") is not True:
                raise PushAuthError("push token's service account email is not verified")
        return PushClaims(
            issuer=str(issuer),
            audience=self.audience,
            email=email if isinstance(email, str) else None,
        )

    async def _certificates(self, key_id: str | None) -> Mapping[str, str]:
        async with self._lock:
            now = time.monotonic()
            stale = now >= self._expires_at
            unknown = key_id is not None and key_id not in self._certs
            if stale or (unknown and now - self._fetched_at >= _REFETCH_AFTER):
                await asyncio.to_thread(self._refresh)
            return self._certs

    def _refresh(self) -> None:
        try:
            response = self._fetch(self.certs_url)
        except auth_exceptions.TransportError as exc:
            raise PushCertsUnavailable(f"cannot fetch {self.certs_url}: {exc}") from exc
        if response.status != 200:
            raise PushCertsUnavailable(f"{self.certs_url} answered HTTP {response.status}")
        try:
            certs = msgspec.json.decode(response.data, type=dict[str, str])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PushCertsUnavailable(f"{self.certs_url}: not a {{kid: PEM}} map") from exc
        now = time.monotonic()
        self._certs = certs
        self._fetched_at = now
        self._expires_at = now + _cache_seconds(response.headers)


def _http_fetch(url: str) -> Response:
    response: Response = Request()(url, method="GET", timeout=10)
    return response


def _cache_seconds(headers: Mapping[str, str]) -> float:
    control = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    match = _MAX_AGE.search(control)
    return float(match.group(1)) if match else _DEFAULT_CACHE_SECONDS


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushAuthError("a Pub/Sub bearer token is required")
    return token.strip()


def _key_id(token: str) -> str | None:
    try:
        header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
    except (ValueError, auth_exceptions.GoogleAuthError) as exc:
        raise PushAuthError(f"push token malformed: {exc}") from exc
    if not isinstance(header, dict):
        raise PushAuthError("push token malformed: its header is not an object")
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None
