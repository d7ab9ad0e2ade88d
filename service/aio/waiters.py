"""Waiters: tasks waiting for room, woken in order and only as many as there is room for."""

from __future__ import annotations

import asyncio
from collections import deque


class Waiters:
    """A FIFO of waiting tasks. `wake(n)` lets the n longest-waiting go on; waking them all at every bit of
    room would be a stampede (each would wake, look, and go back to waiting)."""

    def __init__(self) -> None:
        self._queue: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    async def wait(self) -> None:
        """Wait for a turn."""
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.wake(1)  # woken as we were cancelled: pass the turn on
            else:
                self._queue.remove(waiter)
            raise

    def wake(self, count: int) -> None:
        """Let up to `count` waiting tasks go on, longest-waiting first."""
        while count > 0 and self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def wake_all(self) -> None:
        """Let every waiting task go on."""
        self.wake(len(self._queue))
