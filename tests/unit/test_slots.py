"""The agent's compute slots: a limit on messages computing at once, lent out while the
model is awaited."""

from __future__ import annotations

import asyncio

import pytest

from fte_core.slots import Slots


async def test_at_most_limit_hold_a_slot_and_one_awaiting_the_model_lends_it() -> None:
    slots = Slots(2)
    inside = 0
    peak = 0
    model_calls = 0

    async def message(calls_model: bool) -> None:
        nonlocal inside, peak, model_calls
        async with slots.held():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            if calls_model:
                inside -= 1
                async with slots.away():
                    model_calls += 1
                    await asyncio.sleep(0.05)
                inside += 1
                peak = max(peak, inside)
            inside -= 1

    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(message(i % 2 == 0) for i in range(10)))
    elapsed = asyncio.get_running_loop().time() - started
    assert peak == 2
    assert model_calls == 5
    # the five 50 ms model calls overlapped instead of queueing for the two slots
    assert elapsed < 0.25


async def test_a_message_cancelled_while_waiting_to_compute_again_returns_no_slot() -> None:
    slots = Slots(1)
    release = asyncio.Event()

    async def stuck() -> None:
        async with slots.held(), slots.away():
            await release.wait()

    async def busy() -> None:
        async with slots.held():
            await asyncio.sleep(3600)

    first = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    second = asyncio.create_task(busy())
    await asyncio.sleep(0)
    release.set()  # `first` now waits for its slot back, held by `second`
    await asyncio.sleep(0.01)
    first.cancel()
    second.cancel()
    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task
    # one slot, free again: exactly one holder fits
    async with slots.held():
        assert slots._semaphore is not None
        assert slots._semaphore.locked()


async def test_no_limit_and_a_bad_limit() -> None:
    slots = Slots(0)
    async with slots.held(), slots.away():
        pass
    with pytest.raises(ValueError, match="slot limit"):
        Slots(-1)
