"""Batcher: collects entries and sends them in batches, when a batch is full or its oldest entry is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from service.aio.waiters import Waiters
from service.errors import ClosedError

T = TypeVar("T")
_log = logging.getLogger(__name__)


class Batcher(Generic[T]):
    """Groups entries into batches of at most `max_entries` (and `max_bytes` by `size_of`) and sends them.

    A batch goes out when it is full or when its oldest entry has waited `max_wait_s`. Up to
    `max_in_flight` batches are sent at once; `put` waits while `max_ready` full batches are queued
    behind them, so memory stays bounded. With `send_when_idle`, a partial batch goes out at once while no
    batch is in flight (a lone caller does not wait `max_wait_s`); under load batches still fill up while
    others are in flight. `run` is the sending loop; `close` makes it flush and return.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[None]],
        *,
        max_entries: int,
        max_wait_s: float,
        max_in_flight: int = 4,
        max_ready: int = 4,
        max_bytes: int | None = None,
        size_of: Callable[[T], int] | None = None,
        send_when_idle: bool = False,
    ) -> None:
        self._send = send
        self._max_entries = max_entries
        self._max_wait_s = max_wait_s
        self._max_ready = max_ready
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._open: list[T] = []
        self._open_bytes = 0
        self._open_since = 0.0
        self._ready: deque[list[T]] = deque()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._sending = 0
        self._send_when_idle = send_when_idle
        self._wake = asyncio.Event()
        self._blocked = Waiters()  # puts waiting for room
        self._closed = False
        self._added = 0
        self._finished = 0
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def pending(self) -> int:
        """Entries not yet handed to a send."""
        return len(self._open) + sum(len(batch) for batch in self._ready)

    async def put(self, entry: T) -> None:
        """Add an entry, waiting while `max_ready` full batches are queued."""
        if len(self._ready) >= self._max_ready and not self._closed:
            await self._blocked.wait()
        self.put_nowait(entry)

    def put_nowait(self, entry: T) -> None:
        """Add an entry without waiting (for callers whose own limits bound what they add)."""
        if self._closed:
            raise ClosedError("the batcher is closed")
        size = self._size_of(entry) if self._size_of else 0
        if self._open and self._max_bytes is not None and self._open_bytes + size > self._max_bytes:
            self._seal()
        if not self._open:
            self._open_since = time.monotonic()
            self._wake.set()
        self._open.append(entry)
        self._added += 1
        self._open_bytes += size
        if len(self._open) >= self._max_entries:
            self._seal()

    async def flush(self) -> None:
        """Send what is held now without waiting for companions; return once those entries' sends are done."""
        target = self._added
        if self._open:
            self._seal()
        if self._finished < target:
            done = asyncio.get_running_loop().create_future()
            self._flushes.append((target, done))
            await done

    def close(self) -> None:
        """Take no more entries; `run` sends what it holds and returns."""
        self._closed = True
        self._wake.set()
        self._blocked.wake_all()  # they find the batcher closed

    async def run(self) -> None:
        """Send batches until closed and empty; waits for every send it started."""
        async with asyncio.TaskGroup() as sends:
            while True:
                if self._ready:
                    await self._in_flight.acquire()
                    self._sending += 1
                    sends.create_task(self._send_batch(self._ready.popleft()))
                    self._blocked.wake(self._max_entries)  # room for a batch more
                elif self._open and (self._closed or self._open_due_in() <= 0 or self._idle()):
                    self._seal()
                elif self._closed and not self._open:
                    return
                else:
                    await self._wait(None if not self._open else self._open_due_in())

    def _idle(self) -> bool:
        return self._send_when_idle and self._sending == 0

    async def _send_batch(self, batch: list[T]) -> None:
        try:
            await self._send(batch)
        except Exception:
            # A send reports its own outcomes; one that raises anyway must not stop the batcher.
            _log.exception("batch send failed")
        finally:
            self._sending -= 1
            if self._send_when_idle and self._open:
                self._wake.set()  # idle now: the partial batch goes out
            self._in_flight.release()
            self._finished += len(batch)
            self._wake_flushes()

    def _wake_flushes(self) -> None:
        waiting = []
        for target, done in self._flushes:
            if self._finished >= target:
                if not done.done():
                    done.set_result(None)
            else:
                waiting.append((target, done))
        self._flushes = waiting

    def _seal(self) -> None:
        self._ready.append(self._open)
        self._open = []
        self._open_bytes = 0
        self._wake.set()

    def _open_due_in(self) -> float:
        return self._open_since + self._max_wait_s - time.monotonic()

    async def _wait(self, timeout_s: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)
