"""Budget: a number of slots shared by several members in proportion to their weights, among those that want them."""

from __future__ import annotations

import asyncio
from collections import deque


class Budget:
    """`total` slots shared by members (`share(name, weight)`).

    A member takes nothing while it neither holds nor waits for a slot, so a lone busy member can hold all of
    them. While several want slots, each free slot goes to the waiting member holding the fewest slots for its
    weight, so members that keep wanting slots hold them in proportion to their weights, and none waits forever.
    A free slot never waits for a member that wants none right now: idle slots would stall the others.
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"a budget needs at least one slot, not {total}")
        self.total = total
        self.free = total
        self._shares: list[Share] = []

    def share(self, name: str, weight: int = 1) -> Share:
        """A new member's share; `weight` (at least 1) is its part while others want slots too."""
        if weight < 1:
            raise ValueError(f"a weight is at least 1, not {weight}")
        share = Share(self, name, weight)
        self._shares.append(share)
        return share

    def held(self) -> dict[str, int]:
        """Slots held, by member."""
        return {share.name: share.held for share in self._shares}

    def waiting(self) -> dict[str, int]:
        """Acquires waiting for a slot, by member."""
        return {share.name: share.waiting for share in self._shares}

    def _dispatch(self) -> None:
        """Hand free slots to waiters, each to the waiting member holding the fewest slots for its weight."""
        for share in self._shares:  # a waiter cancelled before its own clean-up ran
            while share._waiters and share._waiters[0].done():
                share._waiters.popleft()
        while self.free > 0:
            waiting = [share for share in self._shares if share.waiting]
            if not waiting:
                return
            chosen = min(waiting, key=lambda share: share.held / share.weight)
            waiter = chosen._waiters.popleft()
            if waiter.done():
                continue
            self.free -= 1
            chosen.held += 1
            waiter.set_result(None)


class Share:
    """One member's access to a Budget: `await acquire()` a slot, `release()` it once done."""

    def __init__(self, budget: Budget, name: str, weight: int) -> None:
        self.budget = budget
        self.name = name
        self.weight = weight
        self.held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Acquires waiting for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self) -> None:
        """Wait for a slot and take it."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.budget._dispatch()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled
            raise

    def release(self) -> None:
        """Give a slot back; it goes to whoever waits."""
        if self.held < 1:
            raise RuntimeError(f"{self.name} holds no slot to release")
        self.held -= 1
        self.budget.free += 1
        self.budget._dispatch()
