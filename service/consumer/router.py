"""Router: a Handler that dispatches each message to the Handler registered for its route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.message import Message
from service.consumer.typed import OnInvalid, TypedHandler, typed_handler
from service.errors import ConfigError, RouteError

Resolver = Callable[[Message], str | None]
H = TypeVar("H", bound=Handler | SyncHandler)
T = TypeVar("T")
R = TypeVar("R", bound=Awaitable[None] | None)


def route_attribute(message: Message) -> str | None:
    """The default resolver: the `route` message attribute."""
    return message.route


class Router:
    """Routes messages by a key (default: the `route` attribute) to registered handlers.

    A message with no key or an unknown key goes to `fallback` when one is set; otherwise the Router raises
    RouteError, so the message stays in the queue to be retried and, in the end, reaches its dead-letter queue.
    """

    def __init__(self, *, resolver: Resolver = route_attribute, fallback: Handler | SyncHandler | None = None) -> None:
        self.resolver = resolver
        self.fallback = None if fallback is None else as_handler(fallback)
        self._routes: dict[str, Handler] = {}

    @overload
    def handle(self, route: str, handler: Handler | SyncHandler) -> None: ...

    @overload
    def handle(
        self, route: str, handler: TypedHandler[T], *, model: type[T], on_invalid: OnInvalid = "reject"
    ) -> None: ...

    def handle(
        self, route: str, handler: Any, *, model: type[Any] | None = None, on_invalid: OnInvalid = "reject"
    ) -> None:
        """Register `handler` for `route` (replacing any previous one).

        With `model`, the body is validated into it (see `Message.model`) and the handler is called as
        `handler(message, value)`; an invalid body is rejected (the dead-letter queue at once), or with
        `on_invalid="retry"` fails like any error, for the retry policy.
        """
        if not route:
            raise ConfigError("route", route, "a non-empty route name")
        if model is None:
            self._routes[route] = as_handler(handler)
        else:
            self._routes[route] = typed_handler(handler, model, on_invalid=on_invalid)

    @overload
    def route(self, route: str) -> Callable[[H], H]: ...

    @overload
    def route(
        self, route: str, *, model: type[T], on_invalid: OnInvalid = "reject"
    ) -> Callable[[Callable[[Message, T], R]], Callable[[Message, T], R]]: ...

    def route(
        self, route: str, *, model: type[Any] | None = None, on_invalid: OnInvalid = "reject"
    ) -> Callable[[Any], Any]:
        """Decorator form of `handle`: `@router.route("orders.created", model=OrderCreated)`."""

        def register(handler: Any) -> Any:
            if model is None:
                self.handle(route, handler)
            else:
                self.handle(route, handler, model=model, on_invalid=on_invalid)
            return handler

        return register

    @property
    def routes(self) -> list[str]:
        """The registered routes."""
        return sorted(self._routes)

    async def __call__(self, message: Message) -> None:
        """Handle `message` with the handler of its route."""
        key = self.resolver(message)
        handler = self._routes.get(key) if key is not None else None
        if handler is None:
            if self.fallback is None:
                raise RouteError(key)
            handler = self.fallback
        await handler(message)
