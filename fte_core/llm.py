"""The LLM responder: one chat completion through litellm, any provider.

litellm is imported inside methods only: `import litellm` takes about 3 s and pulls in
every provider, and `fte_core` must import in milliseconds with no vendor code loaded.
Call `warm()` at start-up to pay that cost before the first message instead of on it.

Fallbacks are tried here, in order, each model with litellm's own retries and timeout,
rather than through litellm's `fallbacks=` argument: that wrapper re-raises a bare
Exception (the error type is lost), logs each failure with a traceback at ERROR level and
does not say which model answered. Here the Answer names the model that answered, says
why an earlier one was skipped, and a total failure raises ResponderError from the last
vendor error. `api_base` and `api_key` apply to every model; leave them unset to let
litellm use each provider's own credentials.

`ALLOW_MODEL_REQUESTS` is a process-wide guard for test suites: when False, a request
that would leave the machine (no api_base, i.e. a real provider, or a non-loopback one)
raises ResponderError before anything is contacted.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from fte_core.errors import ResponderError, ValidationError
from fte_core.models import Usage
from fte_core.ports import Answer, AnswerRequest
from fte_core.prompts import ChatMessage, build_messages, parse_citations, parse_labels

logger = logging.getLogger(__name__)

ALLOW_MODEL_REQUESTS: bool = True
_ERROR_TEXT_CHARS = 300


def set_model_requests_allowed(allowed: bool) -> bool:
    """Set the guard; returns the previous value so callers can restore it."""
    global ALLOW_MODEL_REQUESTS
    previous = ALLOW_MODEL_REQUESTS
    ALLOW_MODEL_REQUESTS = allowed
    return previous


@contextmanager
def model_requests_allowed(allowed: bool) -> Iterator[None]:
    previous = set_model_requests_allowed(allowed)
    try:
        yield
    finally:
        set_model_requests_allowed(previous)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def import_litellm() -> ModuleType:
    import litellm  # deliberately lazy: see the module docstring

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on stdout
    return litellm


class LitellmResponder:
    """ports.Responder over litellm.acompletion."""

    def __init__(
        self,
        model: str,
        *,
        fallbacks: Sequence[str] = (),
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 20.0,
        num_retries: int = 2,
        temperature: float = 0.2,
        max_tokens: int = 700,
    ) -> None:
        if not model.strip():
            raise ValidationError("model", "must be a litellm model id, e.g. openai/gpt-4o-mini")
        if timeout <= 0:
            raise ValidationError("timeout", f"must be positive, got {timeout}")
        if num_retries < 0:
            raise ValidationError("num_retries", f"must be >= 0, got {num_retries}")
        if max_tokens < 1:
            raise ValidationError("max_tokens", f"must be >= 1, got {max_tokens}")
        self.model = model
        self.fallbacks = tuple(fallbacks)
        self.api_base = api_base
        self._api_key = api_key
        self.timeout = timeout
        self.num_retries = num_retries
        self.temperature = temperature
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"LitellmResponder(model={self.model!r}, api_base={self.api_base!r}, api_key={key})"

    @property
    def name(self) -> str:
        return self.model

    def warm(self) -> None:
        """Import litellm now (about 3 s, blocking) so the first answer does not."""
        import_litellm()

    async def aclose(self) -> None:
        """Close litellm's cached HTTP clients (call once at shutdown or test teardown)."""
        await close_clients()

    async def answer(self, request: AnswerRequest) -> Answer:
        self._check_allowed()
        litellm = import_litellm()
        import openai  # litellm's errors subclass openai.OpenAIError; already imported

        messages = build_messages(request)
        failures: list[str] = []
        last_error: BaseException | None = None
        for model in (self.model, *self.fallbacks):
            started = time.perf_counter()
            try:
                response = await self._complete(litellm, model, messages)
                text = _content(response)
            except (openai.OpenAIError, ResponderError) as exc:
                failures.append(f"{model}: {type(exc).__name__}")
                last_error = exc
                logger.warning(
                    "model %s failed after %.0f ms: %s",
                    model,
                    (time.perf_counter() - started) * 1000,
                    self._redact(exc),
                )
                continue
            return self._to_answer(litellm, request, model, response, text, failures)
        raise ResponderError(
            "every model failed: " + "; ".join(failures) + f" ({self._redact(last_error)})"
        ) from last_error

    def _check_allowed(self) -> None:
        if ALLOW_MODEL_REQUESTS:
            return
        if self.api_base is None or not is_loopback_url(self.api_base):
            where = self.api_base or "the provider's default endpoint"
            raise ResponderError(
                f"model requests are disabled (ALLOW_MODEL_REQUESTS=False); refused {where}"
            )

    async def _complete(self, litellm: ModuleType, model: str, messages: list[ChatMessage]) -> Any:
        return await litellm.acompletion(
            model=model,
            messages=messages,
            api_base=self.api_base,
            api_key=self._api_key,
            timeout=self.timeout,
            num_retries=self.num_retries,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )

    def _to_answer(
        self,
        litellm: ModuleType,
        request: AnswerRequest,
        model: str,
        response: Any,
        text: str,
        failures: list[str],
    ) -> Answer:
        labels = parse_labels(text)
        if labels.problem:  # the rules without labels are still the whole floor
            logger.warning("model %s gave no usable labels: %s", model, labels.problem[:200])
        if labels.unknown:
            logger.warning("model %s gave unknown labels, ignored: %r", model, labels.unknown[:10])
        clean, cited = parse_citations(labels.text, [p.id for p in request.passages])
        usage = Usage(
            prompt_tokens=int(getattr(response.usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(response.usage, "completion_tokens", 0) or 0),
            cost_usd=_cost(litellm, response, model),
        )
        fallback = ("fallback after " + "; ".join(failures)) if failures else None
        return Answer(
            text=clean,
            passage_ids=cited,
            responder=model,
            usage=usage,
            fallback=fallback,
            labels=labels.labels,
        )

    def _redact(self, error: BaseException | None) -> str:
        text = f"{type(error).__name__}: {error}"[:_ERROR_TEXT_CHARS]
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text


async def close_clients() -> None:
    """litellm caches HTTP clients process-wide; they hold sockets until closed."""
    await import_litellm().close_litellm_async_clients()


def _content(response: Any) -> str:
    """The answer text; an empty answer counts as that model failing."""
    content = response.choices[0].message.content if response.choices else None
    if not isinstance(content, str) or not content.strip():
        raise ResponderError("the model returned an empty answer")
    return content


def _cost(litellm: ModuleType, response: Any, model: str) -> float:
    """USD cost from litellm's price table; 0.0 for a model the table does not know.

    litellm already priced the response while logging it (`_hidden_params`); computing
    it again costs about a millisecond. Bookkeeping must never lose an answer that was
    already paid for, hence the catch.
    """
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict) and "response_cost" in hidden:  # None: litellm has no price
        known = hidden["response_cost"]
        return float(known) if isinstance(known, int | float) else 0.0
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except (litellm.exceptions.ModelNotMappedError, ValueError, KeyError, TypeError) as exc:
        logger.debug("no cost for model %s: %s", model, type(exc).__name__)
        return 0.0
