"""The inbox's sign-in: the admin token, checked in constant time, buys a signed session
cookie; every form carries a CSRF token derived from that session.

Sessions are stateless: the cookie holds the operator's name, an expiry and a random id,
signed with HMAC-SHA256 under a key derived from the service's token secret *and* the
admin token, so rotating the admin token signs every operator out. The CSRF token is an
HMAC of the session id under the same key: a page from another site can neither read it
nor compute it, and SameSite=Strict keeps the cookie off cross-site requests besides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import msgspec

COOKIE = "fte_admin"
COOKIE_PATH = "/admin"
LIFETIME = timedelta(hours=12)
MAX_NAME = 80


class Session(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the operator, as their replies and notes are signed
    sid: str  # random: what the CSRF token is bound to
    expires: int  # Unix seconds


def session_key(token_secret: bytes, admin_token: str) -> bytes:
    return hmac.new(token_secret, b"admin-session\x00" + admin_token.encode(), "sha256").digest()


def token_matches(presented: str, admin_token: str) -> bool:
    """Constant-time: the time taken says nothing about how much of the token was right."""
    given = hashlib.sha256(presented.strip().encode("utf-8")).digest()
    wanted = hashlib.sha256(admin_token.encode("utf-8")).digest()
    return hmac.compare_digest(given, wanted)


def clean_name(name: str) -> str:
    return " ".join(name.split())[:MAX_NAME]


def issue(key: bytes, name: str, now: datetime) -> str:
    session = Session(
        name=clean_name(name),
        sid=secrets.token_urlsafe(18),
        expires=int((now + LIFETIME).timestamp()),
    )
    payload = base64.urlsafe_b64encode(msgspec.json.encode(session)).decode().rstrip("=")
    return f"{payload}.{_sign(key, payload)}"


def read(key: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie holds, or None: unsigned, tampered, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        return None
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        session = msgspec.json.decode(raw, type=Session)
    except (ValueError, msgspec.DecodeError):
        return None
    if session.expires <= now.timestamp() or not session.name:
        return None
    return session


def csrf_token(key: bytes, session: Session) -> str:
    return hmac.new(key, b"csrf\x00" + session.sid.encode(), "sha256").hexdigest()


def csrf_matches(key: bytes, session: Session, presented: str) -> bool:
    return hmac.compare_digest(presented.encode(), csrf_token(key, session).encode())


def _sign(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
