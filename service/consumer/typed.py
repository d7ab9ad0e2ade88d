"""Typed routes: a handler that gets the message's body validated into a model, as well as the message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias, TypeVar, cast

from service.consumer.bodies import type_adapter
from service.consumer.handler import Handler, to_async
from service.consumer.message import Message
from service.errors import ConfigError, InvalidBody

T = TypeVar("T")

TypedHandler: TypeAlias = Callable[[Message, T], Awaitable[None] | None]
"""`handler(message, value)`: async or plain (a plain one runs in a worker thread), like a Handler."""
OnInvalid = Literal["reject", "retry"]
ON_INVALID: tuple[OnInvalid, ...] = ("reject", "retry")


def typed_handler(handler: TypedHandler[T], model: type[T], *, on_invalid: OnInvalid = "reject") -> Handler:
    """A Handler that validates the body into `model`, then calls `handler(message, value)`.

    An invalid body raises InvalidBody (a Reject: the message goes to the dead-letter queue at once), or with
    `on_invalid="retry"` an ordinary error, which the retry policy handles.
    """
    if on_invalid not in ON_INVALID:
        raise ConfigError("on_invalid", on_invalid, " or ".join(repr(choice) for choice in ON_INVALID))
    type_adapter(model)  # at registration: a missing Pydantic or a type it cannot validate fails here, not per message
    # The alias says "awaitable or None" for either kind; to_async tells them apart at run time.
    either = cast("Callable[[Message, Any], Awaitable[None]] | Callable[[Message, Any], None]", handler)
    call: Callable[[Message, Any], Awaitable[None]] = to_async(either)

    async def typed(message: Message) -> None:
        try:
            value = message.model(model)
        except InvalidBody as exc:
            if on_invalid == "reject":
                raise
            raise ValueError(f"{exc.reason} (the route retries invalid bodies)") from exc
        await call(message, value)

    typed.__name__ = getattr(handler, "__name__", "handler")
    return typed
