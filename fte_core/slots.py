"""How many messages run the agent's own stages at once.

A worker keeps many conversations in flight so that messages waiting on the model do not
hold up the others; but the stages around the model call (rules, embeddings, retrieval,
storage) are CPU work, and on a small machine that runs the API beside the worker, thirty
of them at once only queue for the same cores and push the API's tail latency up (on 2
cores: intake p99 at 500 req/s 27-51 ms with 32 at once, 18-21 ms with 2). So a message
holds a slot while it computes and gives it up while it awaits the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class Slots:
    """At most `limit` holders at once (0: no limit). `away` lends a held slot out for
    the duration of an await that needs no CPU."""

    def __init__(self, limit: int = 0) -> None:
        if limit < 0:
            raise ValueError(f"slot limit must be 0 or positive, got {limit}")
        self._semaphore = asyncio.Semaphore(limit) if limit else None
        self._holding: set[asyncio.Task[Any] | None] = set()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        if self._semaphore is None:
            yield
            return
        await self._semaphore.acquire()
        task = asyncio.current_task()
        self._holding.add(task)
        try:
            yield
        finally:
            # cancelled while taking the slot back (`away`), the task holds none
            if task in self._holding:
                self._holding.discard(task)
                self._semaphore.release()

    @asynccontextmanager
    async def away(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self._semaphore is None or task not in self._holding:
            yield
            return
        self._holding.discard(task)
        self._semaphore.release()
        try:
            yield
        finally:
            await self._semaphore.acquire()
            self._holding.add(task)
