"""LitellmResponder over real HTTP against the local OpenAI-compatible server."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from fte_core import llm
from fte_core.errors import ResponderError, ValidationError
from fte_core.llm import LitellmResponder, is_loopback_url, model_requests_allowed
from fte_core.models import Channel, Passage
from fte_core.ports import AnswerRequest
from tests.openai_server import ChatRequestBody, OpenAICompatServer

SECRET = "sk-test-5f1c0ffee5ecret"
PASSAGE = Passage(
    id="product-docs/resetting-your-password/0",
    document="product-docs",
    section="Resetting your password",
    text="On the sign-in page click Forgot password?",
)
REQUEST = AnswerRequest(
    question="How do I reset my password?",
    subject=None,
    channel=Channel.EMAIL,
    customer_name="Ana",
    passages=(PASSAGE,),
)
REPLY = f"Click Forgot password? on the sign-in page.\nSOURCES: {PASSAGE.id}, invented/id"


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Whatever the suite's default, these tests may only reach 127.0.0.1."""
    with model_requests_allowed(False):
        yield


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer(reply=REPLY) as srv:
        yield srv


@pytest.fixture
async def make() -> AsyncIterator[type[LitellmResponder]]:
    yield LitellmResponder
    await LitellmResponder("openai/test").aclose()  # litellm caches clients per loop


async def test_answer_parses_citations_and_records_usage(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    responder = make("openai/test", api_base=server.base_url, api_key=SECRET, num_retries=0)
    answer = await responder.answer(REQUEST)
    assert answer.text == "Click Forgot password? on the sign-in page."
    assert answer.passage_ids == (PASSAGE.id,)
    assert answer.responder == "openai/test"
    assert answer.fallback is None
    assert answer.usage.completion_tokens == len(REPLY.split())
    assert answer.usage.prompt_tokens > 50
    assert answer.usage.cost_usd == 0.0  # a model litellm has no price for
    [sent] = server.chat_requests
    assert sent.model == "test"
    assert sent.messages[0].role == "system"
    assert "<<<CUSTOMER MESSAGE>>>" in (sent.messages[1].content or "")
    assert sent.max_tokens == 700
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_cost_is_computed_for_a_priced_model(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    responder = make("openai/gpt-4o-mini", api_base=server.base_url, api_key="x", num_retries=0)
    answer = await responder.answer(REQUEST)
    assert answer.usage.cost_usd > 0.0
    assert answer.responder == "openai/gpt-4o-mini"


async def test_falls_back_to_the_next_model_when_the_first_fails(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    server.model_status = {"primary": 500}
    responder = make(
        "openai/primary",
        fallbacks=["openai/backup"],
        api_base=server.base_url,
        api_key="x",
        num_retries=1,
    )
    answer = await responder.answer(REQUEST)
    assert answer.responder == "openai/backup"
    assert answer.fallback is not None
    assert "openai/primary" in answer.fallback
    assert answer.passage_ids == (PASSAGE.id,)
    assert [r.model for r in server.chat_requests] == ["primary", "primary", "backup"]


async def test_empty_model_answer_counts_as_a_failure(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    server.reply = lambda chat: "   " if chat.model == "test" else REPLY
    responder = make(
        "openai/test",
        fallbacks=["openai/other"],
        api_base=server.base_url,
        api_key="x",
        num_retries=0,
    )
    answer = await responder.answer(REQUEST)
    assert answer.responder == "openai/other"


async def test_total_failure_raises_responder_error_from_the_vendor_error(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    server.status = 503
    responder = make(
        "openai/a", fallbacks=["openai/b"], api_base=server.base_url, api_key="x", num_retries=0
    )
    with pytest.raises(ResponderError, match="every model failed") as info:
        await responder.answer(REQUEST)
    assert "openai/a" in str(info.value)
    assert "openai/b" in str(info.value)
    assert info.value.__cause__ is not None
    assert len(server.chat_requests) == 2


async def test_timeout_raises_responder_error(
    server: OpenAICompatServer, make: type[LitellmResponder]
) -> None:
    server.delay = 5.0
    responder = make(
        "openai/test", api_base=server.base_url, api_key="x", timeout=0.3, num_retries=0
    )
    started = time.perf_counter()
    with pytest.raises(ResponderError, match="Timeout"):
        await responder.answer(REQUEST)
    assert time.perf_counter() - started < 3.0


async def test_guard_refuses_non_loopback_and_provider_requests_before_any_io(
    server: OpenAICompatServer,
) -> None:
    for api_base in ("https://api.openai.com/v1", "http://10.0.0.5:8000/v1", None):
        responder = LitellmResponder("openai/gpt-4o-mini", api_base=api_base, api_key=SECRET)
        with pytest.raises(ResponderError, match="disabled"):
            await responder.answer(REQUEST)
    assert server.requests == []


def test_guard_can_be_switched_and_restored() -> None:
    assert llm.ALLOW_MODEL_REQUESTS is False
    with model_requests_allowed(True):
        assert llm.ALLOW_MODEL_REQUESTS is True
    assert llm.ALLOW_MODEL_REQUESTS is False


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.8.9.10/v1", True),
        ("http://localhost:1234", True),
        ("http://[::1]:9000/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://127.0.0.1.example.com/v1", False),
        ("not a url", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


async def test_api_key_never_appears_in_logs_or_errors(
    server: OpenAICompatServer, make: type[LitellmResponder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.status = 401
    server.error_message = f"Incorrect API key provided: {SECRET}"
    responder = make("openai/test", api_base=server.base_url, api_key=SECRET, num_retries=0)
    with pytest.raises(ResponderError) as info:
        await responder.answer(REQUEST)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(responder)
    assert caplog.records  # the failure was logged ...
    assert all(SECRET not in record.getMessage() for record in caplog.records)  # ... safely


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: LitellmResponder(" "), "model"),
        (lambda: LitellmResponder("m", timeout=0), "timeout"),
        (lambda: LitellmResponder("m", num_retries=-1), "num_retries"),
        (lambda: LitellmResponder("m", max_tokens=0), "max_tokens"),
    ],
)
def test_bad_settings_name_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field


def test_importing_the_module_does_not_import_litellm() -> None:
    import subprocess
    import sys

    code = "import sys, fte_core.llm; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_server_serves_embeddings_and_request_dependent_replies() -> None:
    import httpx

    def echo(chat: ChatRequestBody) -> str:
        return f"you asked {chat.model}"

    with OpenAICompatServer(reply=echo, embedding_dim=4) as srv:
        emb = httpx.post(f"{srv.base_url}/embeddings", json={"model": "e", "input": ["a", "b"]})
        chat = httpx.post(
            f"{srv.base_url}/chat/completions",
            json={"model": "m1", "messages": [{"role": "user", "content": "hi there"}]},
        )
        missing = httpx.post(f"{srv.base_url}/nothing", json={})
    vectors = [item["embedding"] for item in emb.json()["data"]]
    assert len(vectors) == 2
    assert all(len(v) == 4 for v in vectors)
    assert vectors[0] != vectors[1]
    assert chat.json()["choices"][0]["message"]["content"] == "you asked m1"
    assert chat.json()["usage"]["prompt_tokens"] == 2
    assert missing.status_code == 404
    assert [r.path for r in srv.requests] == [
        "/v1/embeddings",
        "/v1/chat/completions",
        "/v1/nothing",
    ]
