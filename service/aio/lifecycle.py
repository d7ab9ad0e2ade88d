"""Lifecycle: components whose work runs in one task, from `start()` until `shutdown()`, usable as `async with`."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Generic, Self, TypeVar

R = TypeVar("R")


class Lifecycle:
    """`async with component:` starts it and shuts it down (with its default timeout) on the way out."""

    async def start(self) -> None:
        """Start; returns once running."""
        raise NotImplementedError

    async def shutdown(self) -> object:
        """Stop, with the component's default timeout."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()


class Runner(Lifecycle, Generic[R]):
    """A component whose work is one task: `_serve(started)` runs it, and returns its result when stopped.

    `_serve` sets `started` once it runs, waits with `_until_stopped(work)` and then winds down. `start`
    returns once `started` is set, or raises what ended `_serve` before. `_request_stop` asks it to stop.
    """

    def __init__(self) -> None:
        self._runner: asyncio.Task[R] | None = None
        self._stop: asyncio.Future[None] | None = None

    @property
    def alive(self) -> bool:
        """True from `start` until the work stopped (after a shutdown, or because it crashed)."""
        return self._runner is not None and not self._runner.done()

    @property
    def started(self) -> bool:
        """True once `start` was called."""
        return self._runner is not None

    async def start(self) -> None:
        """Start the work; returns once it runs. Raises what kept it from starting."""
        if self._runner is not None:
            raise RuntimeError(f"the {type(self).__name__} was already started")
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._stop = loop.create_future()
        self._runner = asyncio.create_task(self._serve(started), name=self._task_name())
        await asyncio.wait([started, self._runner], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        if not started.done():
            await self._runner  # raises why it stopped

    async def wait(self) -> R:
        """Wait until the work stops; raises what made it crash, if it did."""
        if self._runner is None:
            raise RuntimeError(f"the {type(self).__name__} was not started")
        return await asyncio.shield(self._runner)

    def _request_stop(self) -> bool:
        """Ask the work to stop; False when it was never started."""
        if self._stop is None:
            return False
        if not self._stop.done():
            self._stop.set_result(None)
        return True

    async def _until_stopped(self, work: asyncio.Task[None]) -> None:
        """Wait for a stop request; raises if `work` (the main loop) ends first."""
        assert self._stop is not None, "called from _serve, after start"
        await asyncio.wait([self._stop, work], return_when=asyncio.FIRST_COMPLETED)
        if not self._stop.done():
            work.result()  # the main loop died: raise why
            raise RuntimeError(f"the {type(self).__name__}'s main loop stopped by itself")

    async def _serve(self, started: asyncio.Future[None]) -> R:
        raise NotImplementedError

    def _task_name(self) -> str:
        return type(self).__name__
