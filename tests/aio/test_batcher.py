"""Batcher: batches by count and bytes, sends a partial batch when due, holds puts back when it is full."""

from __future__ import annotations

import asyncio

import pytest

from service.aio.batcher import Batcher
from service.errors import ClosedError


class Sends:
    """A send function that records batches and can be held."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.sent = asyncio.Event()

    async def __call__(self, batch: list[int]) -> None:
        self.batches.append(batch)
        self.sent.set()
        await self.gate.wait()


async def test_batches_by_count_and_by_bytes() -> None:
    sends = Sends()
    batcher = Batcher(sends, max_entries=3, max_wait_s=60, max_bytes=10, size_of=lambda n: n)
    running = asyncio.create_task(batcher.run())
    for entry in (1, 1, 1, 1, 6, 5):  # 3 by count; then 1+6 fits 10 bytes, +5 does not
        batcher.put_nowait(entry)
    batcher.close()
    await running
    assert sends.batches == [[1, 1, 1], [1, 6], [5]]


async def test_a_partial_batch_goes_out_when_its_oldest_entry_is_due() -> None:
    sends = Sends()
    batcher = Batcher(sends, max_entries=10, max_wait_s=0.2)
    running = asyncio.create_task(batcher.run())
    batcher.put_nowait(1)
    await asyncio.wait_for(sends.sent.wait(), 5)
    assert sends.batches == [[1]]
    batcher.close()
    await running


async def test_put_waits_for_room_and_a_cancelled_put_passes_its_turn_on() -> None:
    sends = Sends()
    sends.gate.clear()  # every send hangs until the gate opens
    batcher = Batcher(sends, max_entries=1, max_wait_s=60, max_in_flight=1, max_ready=1)
    running = asyncio.create_task(batcher.run())
    await batcher.put(1)  # taken by the (hanging) send
    await asyncio.wait_for(sends.sent.wait(), 5)
    await batcher.put(2)  # one full batch queued: the batcher is now full
    blocked = [asyncio.create_task(batcher.put(n)) for n in (3, 4)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in blocked)  # held back while full
    blocked[0].cancel()
    sends.gate.set()  # sends finish: room again
    await asyncio.wait_for(blocked[1], 5)
    with pytest.raises(asyncio.CancelledError):
        await blocked[0]
    batcher.close()
    await running
    assert sends.batches == [[1], [2], [4]]
    with pytest.raises(ClosedError):
        batcher.put_nowait(5)


async def test_when_idle_a_partial_batch_goes_out_at_once_and_fills_up_while_one_is_in_flight() -> None:
    sends = Sends()
    sends.gate.clear()  # the first send stays in flight until released
    batcher = Batcher(sends, max_entries=10, max_wait_s=60, send_when_idle=True)
    running = asyncio.create_task(batcher.run())
    batcher.put_nowait(1)
    await sends.sent.wait()  # long before max_wait_s
    assert sends.batches == [[1]]
    sends.sent.clear()
    for entry in (2, 3, 4):
        batcher.put_nowait(entry)
    await asyncio.sleep(0)  # let the loop look at them: a batch is in flight, so they wait for companions
    assert sends.batches == [[1]]
    sends.gate.set()
    await sends.sent.wait()
    assert sends.batches == [[1], [2, 3, 4]]
    batcher.close()
    await running


async def test_flush_sends_what_is_held_and_returns_once_it_was_sent() -> None:
    sends = Sends()
    batcher = Batcher(sends, max_entries=10, max_wait_s=60)
    running = asyncio.create_task(batcher.run())
    for entry in (1, 2):
        batcher.put_nowait(entry)
    await batcher.flush()
    assert sends.batches == [[1, 2]]
    await batcher.flush()  # nothing held: returns at once
    batcher.close()
    await running
