"""Any embedding model litellm can reach (OpenAI, Azure, Cohere, Ollama, a local
OpenAI-compatible server, ...), behind the Embedder port.

litellm is imported on first use: importing it costs seconds and the offline default
never needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import msgspec

from fte_core.errors import ResponderError, ValidationError
from fte_core.llm import close_clients, import_litellm

log = logging.getLogger(__name__)


class _Item(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class LitellmEmbedder:
    def __init__(
        self,
        model: str,
        dimension: int,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        if dimension <= 0:
            raise ValidationError("dimension", "must be positive")
        self._model = model
        self._dimension = dimension
        self._api_base = api_base
        self._api_key = api_key
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def aclose(self) -> None:
        """Close litellm's cached HTTP clients (at shutdown; they hold sockets open)."""
        await close_clients()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        litellm = import_litellm()  # lazily, configured like the responder's
        import openai

        try:
            response = await litellm.aembedding(
                model=self._model,
                input=list(texts),
                api_base=self._api_base,
                api_key=self._api_key,
                timeout=self._timeout,
            )
        except openai.OpenAIError as exc:
            raise ResponderError(f"embedding model {self._model} failed: {exc}") from exc
        return self._vectors(response.data, len(texts))

    def _vectors(self, data: Sequence[Any], expected: int) -> list[list[float]]:
        """Provider payloads vary (dicts or objects); order by index, check the shape."""
        try:
            items = [msgspec.convert(item, _Item, from_attributes=True) for item in data]
        except msgspec.ValidationError as exc:
            raise ResponderError(f"embedding model {self._model}: malformed reply") from exc
        items.sort(key=lambda item: item.index)
        if len(items) != expected or any(len(i.embedding) != self._dimension for i in items):
            raise ResponderError(
                f"embedding model {self._model}: expected {expected} vectors of "
                f"dimension {self._dimension}"
            )
        return [item.embedding for item in items]
