"""Ticket access tokens: what lets a web-form customer (who proved no address) read and
continue their own ticket.

A token is derived from the ticket number with a server secret (HMAC-SHA256), so the
worker can put the status link in a reply without the token ever being stored; the CRM
keeps only its SHA-256 (a ticket without one has no token access), and checks compare
digests in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

_DUMMY = hashlib.sha256(b"no ticket").digest()


def ticket_token(secret: bytes, number: str) -> str:
    """Unguessable without the secret: 192 bits, URL-safe."""
    digest = hmac.new(secret, number.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def access_digest(secret: bytes) -> Callable[[str], bytes]:
    """What intake stores for a ticket it grants token access to (see `open_turn`)."""
    return lambda number: token_hash(ticket_token(secret, number))


def token_matches(token: str, stored: bytes | None) -> bool:
    """Constant time, and the same work whether or not the ticket has a token."""
    expected = stored if stored is not None else _DUMMY
    return hmac.compare_digest(token_hash(token), expected) and stored is not None
