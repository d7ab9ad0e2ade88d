"""Channel: the hand-off between the receive side and the processors, closable like Go's channels."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from service.errors import ClosedError

T = TypeVar("T")


class Channel(Generic[T]):
    """A FIFO that any number of tasks consume with `async for`; `close` ends their loops once it is empty.

    It has no bound of its own: its producer bounds what it puts in (the Server's credits do). An item put
    while consumers wait goes straight to the longest-waiting one.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiting: deque[asyncio.Future[T]] = deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def put_nowait(self, item: T) -> None:
        """Add an item; raises ClosedError once the channel is closed."""
        if self._closed:
            raise ClosedError("the channel is closed")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self._items.append(item)

    def close(self) -> None:
        """Take no more items; consumers finish what is queued, then their loops end."""
        self._closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(StopAsyncIteration())

    async def get(self) -> T:
        """The next item; raises StopAsyncIteration once the channel is closed and empty."""
        if self._items:
            return self._items.popleft()
        if self._closed:
            raise StopAsyncIteration
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._items.appendleft(waiter.result())  # handed to us as we were cancelled: keep it
            raise

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self.get()
