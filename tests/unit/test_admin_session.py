"""The inbox's session cookie and CSRF tokens (service.admin_session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service import admin_session as sessions

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = sessions.session_key(b"s" * 32, "a" * 40)


def test_a_session_reads_back_until_it_expires() -> None:
    cookie = sessions.issue(KEY, "  Grace   Hopper ", NOW)
    session = sessions.read(KEY, cookie, NOW + timedelta(hours=11))
    assert session is not None
    assert session.name == "Grace Hopper"
    assert sessions.read(KEY, cookie, NOW + sessions.LIFETIME) is None


def test_another_key_or_a_rotated_admin_token_reads_nothing() -> None:
    cookie = sessions.issue(KEY, "Ada", NOW)
    rotated = sessions.session_key(b"s" * 32, "b" * 40)
    assert sessions.read(rotated, cookie, NOW) is None
    assert sessions.read(sessions.session_key(b"t" * 32, "a" * 40), cookie, NOW) is None


@given(st.text(max_size=300))
def test_no_forged_or_garbled_cookie_is_a_session(cookie: str) -> None:
    assert sessions.read(KEY, cookie, NOW) is None


def test_a_tampered_payload_is_refused() -> None:
    payload, signature = sessions.issue(KEY, "Ada", NOW).split(".")
    other = "B" if payload.endswith("A") else "A"
    assert sessions.read(KEY, f"{payload[:-1]}{other}.{signature}", NOW) is None
    assert sessions.read(KEY, f"{payload}.{signature[:-1]}", NOW) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    one = sessions.read(KEY, sessions.issue(KEY, "Ada", NOW), NOW)
    two = sessions.read(KEY, sessions.issue(KEY, "Ada", NOW), NOW)
    assert one is not None
    assert two is not None
    token = sessions.csrf_token(KEY, one)
    assert sessions.csrf_matches(KEY, one, token)
    assert not sessions.csrf_matches(KEY, two, token)
    assert not sessions.csrf_matches(KEY, one, "")
    assert not sessions.csrf_matches(KEY, one, token[:-1] + "é")


def test_the_token_check() -> None:
    assert sessions.token_matches("a" * 40, "a" * 40)
    assert sessions.token_matches(" " + "a" * 40 + "\n", "a" * 40)  # pasted with spaces
    assert not sessions.token_matches("a" * 39, "a" * 40)
    assert not sessions.token_matches("", "a" * 40)
