"""One consumed queue of the service: its Server (with its handler, settings and telemetry) and its operations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.aio.budget import Budget
from service.app.config import Settings
from service.app.operations import Operations
from service.consumer.batching import AnyHandler
from service.consumer.router import wrap_handlers
from service.consumer.server import Server
from service.idempotency import Idempotent
from service.payloads.payloads import S3Payloads
from service.telemetry.hooks import Hooks


@dataclass(frozen=True)
class QueueSpec:
    """A queue to consume: its name, URL, settings (the service's, with the queue's own values), handler, weight."""

    name: str
    url: str
    settings: Settings
    handler: AnyHandler
    weight: int = 1


class Consumer:
    """A queue's Server and its Operations (views, dead-letter peek and redrive, recent errors, audit lines).

    `draining` is the service's: the operator routes, given a Consumer, act on its queue alone.
    """

    def __init__(
        self,
        spec: QueueSpec,
        *,
        publish_queue_url: str,
        hooks: Hooks,
        operator_hooks: Hooks,
        payloads: S3Payloads | None,
        budget: Budget | None,
        draining: Callable[[], bool],
        guard: Callable[[AnyHandler], tuple[AnyHandler, Idempotent]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.settings = spec.settings
        self.operations = Operations(
            spec.url,
            publish_queue_url,
            on_action=operator_hooks.operator_action,
            instrument_client=operator_hooks.instrument_client,
        )
        handler = spec.handler
        if hooks.wrap_handler is not None:
            handler = wrap_handlers(handler, hooks.wrap_handler)
        self.idempotency: Idempotent | None = None  # this queue's idempotency guard, if any
        if guard is not None:  # inside the payload step: a body key hashes the body, not its pointer
            handler, self.idempotency = guard(handler)
        if payloads is not None:
            handler = wrap_handlers(handler, payloads.wrap_handler, payloads.wrap_batch)
        self.server = Server(
            spec.url,
            handler,
            spec.settings.server_settings(),
            observer=[
                self.operations.errors,
                *([] if payloads is None else payloads.observers),
                *([] if hooks.observer is None else [hooks.observer]),
            ],
            middleware=hooks.server_middleware,
            batch_middleware=hooks.server_batch_middleware,
            instrument_client=hooks.instrument_client,
            budget=None if budget is None else budget.share(spec.name, spec.weight),
        )
        self._draining = draining

    @property
    def draining(self) -> bool:
        """True from the moment the service's drain was asked for."""
        return self._draining()

    def status(self) -> dict[str, Any]:
        """This queue's part of /status: the counters and state /status shows for the whole service."""
        server = self.server
        return {
            "queue_url": server.queue_url,
            "handler": self.settings.handler,
            "weight": self.spec.weight,
            "pipeline_running": server.alive,
            "ready": server.alive and server.health.not_ready_reason() is None,
            "not_ready_reason": server.health.not_ready_reason() if server.alive else "the pipeline is not running",
            "in_flight": server.in_flight,
            "capacity": server.processor.capacity,
            "paused": server.paused,
            "paused_since": server.paused_since,
            "max_messages_per_s": server.rate_limit,
            "pipeline": server.health.snapshot(),
            "idempotency": None if self.idempotency is None else self.idempotency.stats(),
        }
