"""Router: a Handler that dispatches each message to the Handler registered for its route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, overload

from service.consumer.batching import AnyHandler, BatchHandler, single
from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.message import Message
from service.consumer.typed import OnInvalid, TypedHandler, typed_handler
from service.errors import ConfigError, RouteError
from service.sqs.envelopes import EventBridgeEnvelope

Resolver = Callable[[Message], str | None]
RouteHandler = Handler | SyncHandler | BatchHandler
"""What a route runs: a handler of one message (async or sync) or a batch handler (`service.batch`)."""
H = TypeVar("H", bound=Handler | SyncHandler | BatchHandler)
T = TypeVar("T")
R = TypeVar("R", bound=Awaitable[None] | None)


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

    A route may take a batch handler (`service.batch(fn, ...)`): a Server then gathers each batch route's
    messages into batches of their own, each route with its own `max_messages` and batching window, and runs
    the single-message routes as batches of one; the Server's `concurrency` counts batches of every route.
    """

    def __init__(self, *, resolver: Resolver = route_attribute, fallback: RouteHandler | None = None) -> None:
        self.resolver = resolver
        self._fallback: _Route | None = None if fallback is None else _Route(fallback)
        self._routes: dict[str, _Route] = {}
        self._unrouted = BatchHandler(self._no_route, max_messages=1, max_wait_s=0.0, name="no route")

    @property
    def fallback(self) -> Handler | None:
        """The handler of messages with no key or an unknown key, if any."""
        return None if self._fallback is None else self._fallback.call

    @overload
    def handle(self, route: str, handler: RouteHandler) -> None: ...

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
        `on_invalid="retry"` fails like any error, for the retry policy. A batch handler takes no `model`: it
        validates each message itself (`message.model(T)` raises InvalidBody, a Reject, for that message alone).
        """
        if not route:
            raise ConfigError("route", route, "a non-empty route name")
        if model is None:
            self._routes[route] = _Route(handler)
        elif isinstance(handler, BatchHandler):
            raise ConfigError("model", model, "no model for a batch route: validate with message.model() in it")
        else:
            self._routes[route] = _Route(typed_handler(handler, model, on_invalid=on_invalid))

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

    @property
    def batching(self) -> bool:
        """True when a route (or the fallback) takes batches."""
        return any(r.batched for r in self._all_routes())

    @property
    def max_batch_messages(self) -> int:
        """The largest batch any route gathers."""
        return max((r.batches.max_messages for r in self._all_routes()), default=1)

    def batch_handler_for(self, message: Message) -> BatchHandler:
        """The batch handler that takes `message` (a single-message route's as a batch of one)."""
        route = self._route_of(message)
        return self._unrouted if route is None else route.batches

    async def __call__(self, message: Message) -> None:
        """Handle `message` with the handler of its route (a batch route's as a batch of one)."""
        route = self._route_of(message)
        if route is None:
            raise RouteError(self.resolver(message))
        await route.call(message)

    def wrapped(
        self, single: Callable[[Handler], Handler], batches: Callable[[BatchHandler], BatchHandler] | None = None
    ) -> Router:
        """A Router with the same routes, each handler wrapped: single-message ones by `single`, batch ones by
        `batches` (kept as they are when None)."""
        router = Router(resolver=self.resolver)
        for name, route in self._routes.items():
            router._routes[name] = route.wrapped(single, batches)
        router._fallback = None if self._fallback is None else self._fallback.wrapped(single, batches)
        return router

    def _route_of(self, message: Message) -> _Route | None:
        key = self.resolver(message)
        route = self._routes.get(key) if key is not None else None
        return self._fallback if route is None else route

    def _all_routes(self) -> list[_Route]:
        return [*self._routes.values(), *([] if self._fallback is None else [self._fallback])]

    async def _no_route(self, messages: Sequence[Message]) -> dict[Message, Exception]:
        return {message: RouteError(self.resolver(message)) for message in messages}


class _Route:
    """A route's handler in both shapes: per message (`call`) and per batch (`batches`)."""

    __slots__ = ("batched", "batches", "call")

    def __init__(self, handler: RouteHandler) -> None:
        self.batched = isinstance(handler, BatchHandler)
        if isinstance(handler, BatchHandler):
            self.batches = handler
            self.call = _one_of(handler)
        else:
            self.call = as_handler(handler)
            self.batches = single(self.call)

    def wrapped(
        self, single: Callable[[Handler], Handler], batches: Callable[[BatchHandler], BatchHandler] | None
    ) -> _Route:
        if self.batched:
            return _Route(self.batches if batches is None else batches(self.batches))
        return _Route(single(self.call))


def wrap_handlers(
    handler: AnyHandler,
    single: Callable[[Handler], Handler],
    batches: Callable[[BatchHandler], BatchHandler] | None = None,
) -> AnyHandler:
    """`handler` with every handler in it wrapped: a Router route by route (batch routes stay batch routes),
    a batch handler by `batches` (as it is when None), any other by `single`."""
    if isinstance(handler, BatchHandler):
        return handler if batches is None else batches(handler)
    if isinstance(handler, Router) and handler.batching:
        return handler.wrapped(single, batches)
    return single(as_handler(handler))


def _one_of(handler: BatchHandler) -> Handler:
    """A batch handler called with a batch of one; raises that message's failure."""

    async def one(message: Message) -> None:
        (outcome,) = await handler.run([message])
        if outcome is not None:
            raise outcome

    one.__name__ = handler.__name__
    return one
