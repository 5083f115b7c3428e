"""Pub/Sub push: tokens signed with a key made here, verified by google-auth against a
certificates endpoint served over real HTTP on loopback; the envelope decoded."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from adapters.channels.gmail.envelope import decode_push
from adapters.channels.gmail.errors import PushAuthError, PushCertsUnavailable
from adapters.channels.gmail.push import PushVerifier
from fte_core.errors import ValidationError
from tests.pubsub_tokens import AUDIENCE, PUSH_ACCOUNT, CertsServer, SigningKey


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("kid-1")


@pytest.fixture
def certs(key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer({key.kid: key.cert_pem}).running() as server:
        yield server


def verifier(certs: CertsServer, account: str | None = PUSH_ACCOUNT) -> PushVerifier:
    return PushVerifier(AUDIENCE, service_account=account, certs_url=certs.url)


async def test_valid_token_is_accepted(key: SigningKey, certs: CertsServer) -> None:
    claims = await verifier(certs).verify(f"Bearer {key.token()}")
    assert claims.email == PUSH_ACCOUNT
    assert claims.audience == AUDIENCE


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"aud": "https://elsewhere.example/push"}, "wrong audience"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
        ({"email": "intruder@other-project.iam.gserviceaccount.com"}, "wrong service account"),
        ({"email_verified": False}, "email not verified"),
        ({"iss": "https://evil.example"}, "wrong issuer"),
    ],
)
async def test_bad_claims_are_refused(
    key: SigningKey, certs: CertsServer, overrides: dict[str, object], why: str
) -> None:
    with pytest.raises(PushAuthError):
        await verifier(certs).verify(f"Bearer {key.token(**overrides)}")


async def test_forged_signature_is_refused(certs: CertsServer) -> None:
    forger = SigningKey("kid-1")  # same key id, another private key
    with pytest.raises(PushAuthError, match="rejected"):
        await verifier(certs).verify(f"Bearer {forger.token()}")


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic abc", "Bearer not.a.jwt", "Bearer x"]
)
async def test_missing_or_malformed_header_is_refused(
    certs: CertsServer, header: str | None
) -> None:
    with pytest.raises(PushAuthError):
        await verifier(certs).verify(header)


async def test_without_configured_account_any_google_signed_token_passes(
    key: SigningKey, certs: CertsServer
) -> None:
    claims = await verifier(certs, account=None).verify(f"Bearer {key.token(email='x@y.z')}")
    assert claims.email == "x@y.z"


async def test_certificates_are_cached_and_refetched_for_a_new_key(
    key: SigningKey, certs: CertsServer
) -> None:
    check = verifier(certs)
    for _ in range(3):
        await check.verify(f"Bearer {key.token()}")
    assert certs.requests == 1  # within max-age: fetched once
    rotated = SigningKey("kid-2")
    certs.keys[rotated.kid] = rotated.cert_pem
    check._fetched_at -= 60  # the last fetch is older than the re-fetch pause
    await check.verify(f"Bearer {rotated.token()}")
    assert certs.requests == 2


async def test_unreachable_certificates_are_unavailable_not_unauthorized(
    key: SigningKey, certs: CertsServer
) -> None:
    certs.status = 500
    with pytest.raises(PushCertsUnavailable):
        await verifier(certs).verify(f"Bearer {key.token()}")


def push_body(data: object, **message: object) -> bytes:
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    return json.dumps(
        {
            "message": {"data": encoded, "messageId": "2070443601311540", **message},
            "subscription": "projects/tasklane-prod/subscriptions/gmail-push",
        }
    ).encode()


def test_envelope_decodes_gmail_notification() -> None:
    push = decode_push(push_body({"emailAddress": "Support@Tasklane.example", "historyId": 9876}))
    assert (push.mailbox, push.history_id, push.push_id) == (
        "support@tasklane.example",
        9876,
        "2070443601311540",
    )
    as_string = decode_push(
        push_body({"emailAddress": "support@tasklane.example", "historyId": "12"})
    )
    assert as_string.history_id == 12


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"subscription": "x"}', "body"),
        (b'{"message": {"data": 5}}', "body.message.data"),
        (b'{"message": {"data": "%%%"}}', "message.data"),
        (push_body(["a list"]), "message.data"),
        (push_body({"historyId": 1}), "message.data"),
        (push_body({"emailAddress": "nobody", "historyId": 1}), "message.data.emailAddress"),
        (push_body({"emailAddress": "a@b.example", "historyId": -4}), "message.data.historyId"),
        (push_body({"emailAddress": "a@b.example", "historyId": "12x"}), "message.data.historyId"),
    ],
)
def test_bad_envelopes_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_push(body)
    assert caught.value.field == field
