"""LitellmEmbedder over real HTTP against the loopback OpenAI-compatible test server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from adapters.embedding.litellm import LitellmEmbedder
from fte_core.errors import ResponderError
from tests.openai_server import OpenAICompatServer, fake_embedding


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await LitellmEmbedder("openai/emb-test", 8).aclose()  # litellm caches HTTP clients


async def test_embeds_in_order_through_litellm() -> None:
    with OpenAICompatServer(embedding_dim=16) as server:
        embedder = LitellmEmbedder("openai/emb-test", 16, api_base=server.base_url, api_key="k")
        vectors = await embedder.embed(["reset password", "invite members"])
        assert vectors == [
            fake_embedding("reset password", 16),
            fake_embedding("invite members", 16),
        ]
        (request,) = server.requests
        assert request.embedding is not None
        assert request.embedding.model == "emb-test"
        assert request.headers["authorization"] == "Bearer k"
    assert (embedder.name, embedder.dimension) == ("openai/emb-test", 16)
    assert await embedder.embed([]) == []


async def test_wrong_dimension_is_a_responder_error() -> None:
    with OpenAICompatServer(embedding_dim=8) as server:
        embedder = LitellmEmbedder("openai/emb-test", 16, api_base=server.base_url, api_key="k")
        with pytest.raises(ResponderError, match="dimension 16"):
            await embedder.embed(["x"])


async def test_unreachable_server_is_a_responder_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = LitellmEmbedder(
        "openai/emb-test", 8, api_base=f"http://127.0.0.1:{port}/v1", api_key="k", timeout=2.0
    )
    with pytest.raises(ResponderError) as error:
        await embedder.embed(["x"])
    assert error.value.__cause__ is not None
