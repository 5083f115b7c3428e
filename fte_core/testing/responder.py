"""Responder fakes: scripted answers and answers computed by a test's own function.

Both record every request they get, so a test can assert what the pipeline asked for
(passages, history, channel) as well as what it did with the answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from fte_core.errors import ValidationError
from fte_core.ports import Answer, AnswerRequest


class ScriptedResponder:
    """Answers with the scripted entries in order; the last entry repeats once reached.

    An entry is answer text, a full Answer, or an exception instance to raise (e.g.
    ResponderError to exercise the pipeline's fallback). Text entries cite
    `passage_ids` when given, otherwise every passage of the request.
    """

    def __init__(
        self,
        *answers: str | Answer | BaseException,
        passage_ids: Sequence[str] | None = None,
        name: str = "scripted",
    ) -> None:
        if not answers:
            raise ValidationError("answers", "ScriptedResponder needs at least one entry")
        self._script = answers
        self._passage_ids = None if passage_ids is None else tuple(passage_ids)
        self._name = name
        self.requests: list[AnswerRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def answer(self, request: AnswerRequest) -> Answer:
        entry = self._script[min(len(self.requests), len(self._script) - 1)]
        self.requests.append(request)
        if isinstance(entry, BaseException):
            raise entry
        if isinstance(entry, Answer):
            return entry
        ids = self._passage_ids
        if ids is None:
            ids = tuple(p.id for p in request.passages)
        return Answer(text=entry, passage_ids=ids, responder=self._name)


AnswerFn = Callable[[AnswerRequest], Answer | Awaitable[Answer]]


class FunctionResponder:
    """Answers with `fn(request)`; `fn` may be a plain or an async function."""

    def __init__(self, fn: AnswerFn, *, name: str = "function") -> None:
        self._fn = fn
        self._name = name
        self.requests: list[AnswerRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def answer(self, request: AnswerRequest) -> Answer:
        self.requests.append(request)
        result = self._fn(request)
        if inspect.isawaitable(result):
            return await result
        return result
