"""The one seam between the admin API and the running service: what the app needs from the Runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from service.aio.budget import Budget
    from service.app.config import Settings
    from service.app.consumers import Consumer
    from service.app.operations import Operations
    from service.consumer.server import Server
    from service.publishing.publisher import Publisher
    from service.telemetry.hooks import Hooks

Endpoint = Callable[[Request], Awaitable[Response]]


class AdminService(Protocol):
    """What the admin API needs from the running service (the Runtime)."""

    settings: Settings
    server: Server  # the first queue's (the only one's, in a one-queue service)
    publisher: Publisher
    operations: Operations  # the first queue's
    consumers: dict[str, Consumer]  # every queue's Server and Operations, by queue name, in the table's order
    publishers: dict[str, Publisher]  # with several queues, a Publisher for each (POST /queues/{name}/publish)
    hooks: Hooks
    budget: Budget | None  # the handler slots the queues share (the queue table's max_in_flight), if any

    @property
    def draining(self) -> bool:
        """True from the moment a drain was asked for."""
        ...

    async def drain(self) -> dict[str, Any]:
        """Drain the service (once); every caller gets the same summary."""
        ...
