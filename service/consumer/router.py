"""Router: a Handler that dispatches each message to the Handler registered for its route."""

from __future__ import annotations

from collections.abc import Callable

from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.message import Message
from service.errors import ConfigError, RouteError
from service.sqs.envelopes import EventBridgeEnvelope

Resolver = Callable[[Message], str | None]


def route_attribute(message: Message) -> str | None:
    """The default resolver: the `route` message attribute, else an EventBridge event's `detail-type`."""
    route = message.route
    if route is None and isinstance(message.envelope, EventBridgeEnvelope):
        return message.envelope.detail_type
    return route


class Router:
    """Routes messages by a key (default: the `route` attribute, else an EventBridge event's detail-type).

    A message with no key or an unknown key goes to `fallback` when one is set; otherwise the Router raises
    RouteError, so the message stays in the queue to be retried and, in the end, reaches its dead-letter queue.
    """

    def __init__(self, *, resolver: Resolver = route_attribute, fallback: Handler | SyncHandler | None = None) -> None:
        self.resolver = resolver
        self.fallback = None if fallback is None else as_handler(fallback)
        self._routes: dict[str, Handler] = {}

    def handle(self, route: str, handler: Handler | SyncHandler) -> None:
        """Register `handler` for `route` (replacing any previous one)."""
        if not route:
            raise ConfigError("route", route, "a non-empty route name")
        self._routes[route] = as_handler(handler)

    def route(self, route: str) -> Callable[[Handler | SyncHandler], Handler | SyncHandler]:
        """Decorator form of `handle`."""

        def register(handler: Handler | SyncHandler) -> Handler | SyncHandler:
            self.handle(route, handler)
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
