"""Budget: slots shared by weight among the members that want them; a lone member may take them all."""

from __future__ import annotations

import asyncio

import pytest

from service.aio.budget import Budget, Share


async def _holders(share: Share, count: int) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(share.acquire()) for _ in range(count)]
    await asyncio.sleep(0)  # let each reach its wait: the budget grants in order of arrival within a member
    return tasks


async def test_a_lone_member_takes_every_slot_and_no_more() -> None:
    budget = Budget(4)
    busy, idle = budget.share("busy", 3), budget.share("idle", 1)
    tasks = await _holders(busy, 6)
    assert budget.held() == {"busy": 4, "idle": 0}
    assert budget.waiting() == {"busy": 2, "idle": 0}
    assert idle.held == 0
    busy.release()
    await asyncio.sleep(0)
    assert (busy.held, busy.waiting, budget.free) == (4, 1, 0)
    for task in tasks:
        task.cancel()


async def test_slots_follow_the_weights_while_both_want_them() -> None:
    budget = Budget(8)
    heavy, light = budget.share("heavy", 3), budget.share("light", 1)
    await _holders(heavy, 8)
    assert budget.held() == {"heavy": 8, "light": 0}
    await _holders(light, 30)
    await _holders(heavy, 30)
    for turn in range(24):  # slots turn over, released by either member: each goes to the one furthest below its part
        (heavy if turn % 2 or not light.held else light).release()
        await asyncio.sleep(0)
        assert heavy.held + light.held == 8
    assert budget.held() == {"heavy": 6, "light": 2}


async def test_no_waiting_member_starves() -> None:
    budget = Budget(2)
    big, small = budget.share("big", 100), budget.share("small", 1)
    await _holders(big, 10)
    waiting = await _holders(small, 1)
    big.release()
    await asyncio.sleep(0)
    assert waiting[0].done()
    assert small.held == 1


async def test_a_cancelled_wait_takes_nothing_and_a_granted_one_gives_its_slot_back() -> None:
    budget = Budget(1)
    first, second = budget.share("a"), budget.share("b")
    await first.acquire()
    (waiting,) = await _holders(second, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.waiting() == {"a": 0, "b": 0}
    (granted,) = await _holders(second, 1)
    first.release()  # grants `granted`'s slot ...
    granted.cancel()  # ... which is cancelled before it ran: the slot comes back
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert (budget.free, second.held) == (1, 0)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Budget(0)
    with pytest.raises(ValueError, match="weight"):
        Budget(1).share("a", 0)
    with pytest.raises(RuntimeError, match="holds no slot"):
        Budget(1).share("a").release()
