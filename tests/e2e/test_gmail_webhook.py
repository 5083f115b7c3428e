"""The Gmail webhook's contract in-process (in-memory storage): unconfigured 503 with a
clear message, readiness saying so, 401 before anything is parsed, 400 for bad bodies,
413 for oversize ones, 503 when the API part is missing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from service.settings_gmail import GmailSettings
from service.state import ServiceState
from tests.e2e.conftest import ADMIN
from tests.pubsub_tokens import AUDIENCE, CertsServer, SigningKey

Client = AsyncTestClient[Litestar]
PATH = "/api/v1/webhooks/gmail"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("k1")


@pytest.fixture
def certs(key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer({key.kid: key.cert_pem}).running() as server:
        yield server


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[Client]:
    @asynccontextmanager
    async def state() -> AsyncIterator[ServiceState]:
        runtime = await bootstrap(settings)
        try:
            yield ServiceState(runtime=runtime, admin_token=ADMIN, bus="memory")
        finally:
            await runtime.aclose()

    async with AsyncTestClient(app=create_app(state, max_body_bytes=64 * 1024)) as client:
        yield client


def push_body(history_id: object = 1234) -> bytes:
    data = json.dumps({"emailAddress": "support@tasklane.example", "historyId": history_id})
    return json.dumps({"message": {"data": base64.b64encode(data.encode()).decode()}}).encode()


async def test_unconfigured_answers_503_and_readiness_says_so(settings: Settings) -> None:
    async with client_for(settings) as client:
        response = await client.post(PATH, content=push_body())
        assert response.status_code == 503
        assert "GMAIL_PUSH_AUDIENCE" in response.json()["detail"]
        ready = await client.get("/api/v1/ready")
        assert ready.status_code == 200  # the service runs without email
        assert ready.json()["channels"]["email"].startswith(
            "not configured (set GMAIL_PUSH_AUDIENCE"
        )


async def test_push_checks_in_order(
    settings: Settings, certs: CertsServer, key: SigningKey
) -> None:
    gmail = GmailSettings(push_audience=AUDIENCE, push_certs_url=certs.url)
    audience_only = msgspec.structs.replace(settings, gmail=gmail)
    good = {"Authorization": f"Bearer {key.token()}", "Content-Type": "application/json"}
    async with client_for(audience_only) as client:
        assert (await client.post(PATH, content=push_body())).status_code == 401
        bad = {"Authorization": "Bearer not-a-token", "Content-Type": "application/json"}
        assert (await client.post(PATH, content=push_body(), headers=bad)).status_code == 401
        large = await client.post(PATH, content=b"x" * (2 * 1024 * 1024), headers=good)
        assert large.status_code == 413
        malformed = await client.post(PATH, content=b'{"message": 1}', headers=good)
        assert malformed.status_code == 400
        assert malformed.json()["fields"] == {"body.message": malformed.json()["detail"]}
        bad_history = await client.post(PATH, content=push_body("abc"), headers=good)
        assert bad_history.status_code == 400
        assert "message.data.historyId" in bad_history.json()["fields"]
        no_api = await client.post(PATH, content=push_body(), headers=good)
        assert no_api.status_code == 503
        assert "GMAIL_MAILBOX" in no_api.json()["detail"]
