"""Handlers: what processes a message. Returning means success; raising means failure."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from service.consumer.message import Message

Handler: TypeAlias = Callable[[Message], Awaitable[None]]
SyncHandler: TypeAlias = Callable[[Message], None]


def as_handler(handler: Handler | SyncHandler) -> Handler:
    """Return `handler` as an async Handler; a plain function runs in a worker thread.

    A thread cannot be cancelled: at shutdown its message is handed back while the thread finishes.
    """
    if is_async(handler):
        return handler  # type: ignore[return-value]
    sync_handler: SyncHandler = handler  # type: ignore[assignment]

    async def in_thread(message: Message) -> None:
        await asyncio.to_thread(sync_handler, message)

    in_thread.__name__ = getattr(handler, "__name__", "handler")
    return in_thread


def is_async(handler: object) -> bool:
    """True for an `async def` function, or an object whose `__call__` is one."""
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - instances with an async __call__
    return inspect.iscoroutinefunction(handler) or (
        call is not None and not inspect.isfunction(handler) and inspect.iscoroutinefunction(call)
    )
