"""Running a command's coroutine so that SIGTERM and Ctrl-C stop it cleanly.

The signal cancels the command's task, so the interruption lands at an await point: a
resource being opened (the embedded PostgreSQL starting) finishes opening and is then
closed by the command's own clean-up, instead of being left running half-registered.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGINT stopped the command after its clean-up ran."""


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise Terminated from None
