"""Handlers: what processes a message. Returning means success; raising means failure."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeAlias, TypeVar, cast

from service.consumer.message import Message

Handler: TypeAlias = Callable[[Message], Awaitable[None]]
SyncHandler: TypeAlias = Callable[[Message], None]
P = ParamSpec("P")
R = TypeVar("R")


def as_handler(handler: Handler | SyncHandler) -> Handler:
    """Return `handler` as an async Handler; a plain function runs in a worker thread.

    A thread cannot be cancelled: at shutdown its message is handed back while the thread finishes.
    """
    return to_async(handler)


def to_async(fn: Callable[P, Awaitable[R]] | Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function: as it is when it is async (see `is_async`), else run in a worker thread.

    Every kind of handler (single, typed, batch) goes through here, so sync and async ones behave alike.
    """
    if is_async(fn):
        return cast(Callable[P, Awaitable[R]], fn)
    sync_fn = cast(Callable[P, R], fn)

    async def in_thread(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(sync_fn, *args, **kwargs)

    in_thread.__name__ = getattr(fn, "__name__", "handler")
    return in_thread


def is_async(handler: object) -> bool:
    """True for an `async def` function, or an object whose `__call__` is one."""
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - instances with an async __call__
    return inspect.iscoroutinefunction(handler) or (
        call is not None and not inspect.isfunction(handler) and inspect.iscoroutinefunction(call)
    )
