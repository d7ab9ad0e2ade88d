"""Capacity: credits for the work in a pipeline, taken before work is fetched and given back when it is done."""

from __future__ import annotations

import asyncio
from collections import deque


class Capacity:
    """`total` credits. Waiters are served in order, so one waiting for many is not starved by smaller takes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, want: int) -> int:
        """Wait until `want` credits (at most the total) are free, and take them."""
        want = min(want, self.total)
        if not self._waiters and self.free >= want:
            self.free -= want
            return want
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((want, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give(want)  # granted just as we were cancelled
            elif (want, waiter) in self._waiters:
                self._waiters.remove((want, waiter))
            raise
        return want

    def give(self, count: int) -> None:
        """Return `count` credits and wake the waiters they satisfy."""
        self.free += count
        while self._waiters and self._waiters[0][0] <= self.free:
            want, waiter = self._waiters.popleft()
            if not waiter.done():
                self.free -= want
                waiter.set_result(None)
