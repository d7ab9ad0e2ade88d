"""Channel: the closable hand-off between the receive side and the processors."""

from __future__ import annotations

import asyncio

import pytest

from service.aio.channel import Channel
from service.errors import ClosedError


async def test_items_come_out_in_order_and_close_ends_every_consumer_after_the_rest() -> None:
    channel = Channel[int]()
    seen: list[tuple[int, int]] = []

    async def consume(worker: int) -> None:
        async for item in channel:
            seen.append((worker, item))
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as consumers:
        for worker in range(3):
            consumers.create_task(consume(worker))
        for item in range(20):
            channel.put_nowait(item)
        channel.close()
    assert sorted(item for _, item in seen) == list(range(20))
    assert [item for _, item in seen] == list(range(20))  # handed out in order
    assert {worker for worker, _ in seen} == {0, 1, 2}  # shared by the consumers


async def test_a_put_after_close_is_refused() -> None:
    channel = Channel[int]()
    channel.close()
    with pytest.raises(ClosedError):
        channel.put_nowait(1)
    with pytest.raises(StopAsyncIteration):
        await channel.get()


async def test_an_item_handed_to_a_consumer_being_cancelled_is_kept() -> None:
    channel = Channel[str]()
    getter = asyncio.create_task(channel.get())
    await asyncio.sleep(0)  # the getter now waits
    channel.put_nowait("precious")  # handed straight to the waiting getter...
    getter.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert await channel.get() == "precious"
    assert len(channel) == 0
