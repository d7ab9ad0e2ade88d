"""Waiters: woken in order, only as many as asked, and a cancelled turn is passed on."""

from __future__ import annotations

import asyncio

import pytest

from service.aio.waiters import Waiters


async def test_wake_lets_the_longest_waiting_go_first_and_no_more() -> None:
    waiters = Waiters()
    woken: list[int] = []

    async def wait(n: int) -> None:
        await waiters.wait()
        woken.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(4)]
    await asyncio.sleep(0)  # one turn of the loop: each task starts waiting
    assert len(waiters) == 4
    waiters.wake(2)
    await asyncio.gather(*tasks[:2])
    assert woken == [0, 1]
    assert len(waiters) == 2
    waiters.wake_all()
    await asyncio.gather(*tasks[2:])
    assert woken == [0, 1, 2, 3]


async def test_a_turn_given_to_a_cancelled_waiter_goes_to_the_next() -> None:
    waiters = Waiters()
    first = asyncio.create_task(waiters.wait())
    second = asyncio.create_task(waiters.wait())
    await asyncio.sleep(0)  # one turn of the loop: both start waiting
    assert len(waiters) == 2
    waiters.wake(1)  # the turn goes to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)  # so `second` got it
    assert len(waiters) == 0
