"""Lifecycle: `async with` for the components that have `start()` and `shutdown()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


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
