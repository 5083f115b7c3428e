"""Work that runs beside other work inside one message's handling (fte_core.pipeline).

The store's intake transaction, the question embedding, the message's text features, the
knowledge-base search and the conversation history do not depend on one another's
results, so a message awaits them side by side instead of in turn. Each is awaited
before the message's handling ends: a statement is never cut off in its middle, an
embedding's thread could not be stopped anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, overload

_T = TypeVar("_T")


@overload
def beside(work: Awaitable[_T]) -> AbstractAsyncContextManager[asyncio.Future[_T]]: ...
@overload
def beside(work: None) -> AbstractAsyncContextManager[None]: ...
def beside(work: Awaitable[_T] | None) -> AbstractAsyncContextManager[asyncio.Future[_T] | None]:
    """`work` started now and running while the block awaits other things; a block that
    leaves without its result still waits for it to end, then drops it (None: nothing)."""
    return _running(work) if work is not None else contextlib.nullcontext()


@contextlib.asynccontextmanager
async def _running(work: Awaitable[_T]) -> AsyncIterator[asyncio.Future[_T]]:
    task = asyncio.ensure_future(work)
    task.add_done_callback(_heard)
    try:
        # one turn of the loop (every ready task gets it): the work takes its first step,
        # sends its statement or hands its text to the model's thread, before the block
        # computes on the loop
        await asyncio.sleep(0)
        yield task
    finally:
        await asyncio.wait({task})


def _heard(task: asyncio.Future[Any]) -> None:
    """A dropped task's failure is the block's business (it awaited the task, or left for
    a reason of its own): it is not logged again as "never retrieved"."""
    if not task.cancelled():
        task.exception()


class Recent:
    """The last `size` keys seen, oldest forgotten first: a bounded memory of messages
    another worker held, so a worker polling for one does not read it on every try."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._keys
