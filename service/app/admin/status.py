"""`GET /status`: liveness, readiness, pipeline and publisher counters, settings."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import RouteGroup, json_response
from service.app.admin.probes import Liveness, not_ready_reason
from service.app.admin.protocol import AdminService
from service.idempotency.guard import COUNT_NAMES

_NULLABLE_TEXT = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_STATUS = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "alive",
        "pipeline_running",
        "draining",
        "ready",
        "in_flight",
        "paused",
        "paused_since",
        "max_messages_per_s",
        "pipeline",
        "publisher",
        "settings",
        "queues",
    ],
    "properties": {
        "alive": {"type": "boolean", "description": "The same verdict as /healthz."},
        "alive_problem": _NULLABLE_TEXT | {"description": "Why /healthz fails, or null."},
        "pipeline_running": {"type": "boolean", "description": "The message pipeline runs (false after a drain)."},
        "draining": {"type": "boolean"},
        "ready": {"type": "boolean", "description": "The same verdict as /readyz."},
        "not_ready_reason": _NULLABLE_TEXT | {"description": "Why /readyz fails, or null."},
        "in_flight": {"type": "integer", "minimum": 0},
        "max_in_flight": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "The handler slots the queues share (the queue table's max_in_flight), or null for none.",
        },
        "paused": {"type": "boolean", "description": "Receiving is paused (POST /pause)."},
        "paused_since": {"type": ["number", "null"], "description": "When it was paused (epoch seconds), or null."},
        "max_messages_per_s": {"type": ["number", "null"], "description": "The rate limit, or null for none."},
        "pipeline": {
            "type": "object",
            "description": "Counters since start (`deleted` lags `handled` by up to MQ_DELETION_INTERVAL_S; "
            "`rejected`: sent to the dead-letter queue by a handler's Reject, then deleted) "
            "and the receive loop's state.",
            "required": [
                "received",
                "handled",
                "failed",
                "deleted",
                "released",
                "rejected",
                "consecutive_receive_errors",
            ],
        },
        "publisher": {"type": "object", "required": ["published", "failed", "retried", "buffered"]},
        "settings": {"type": "object", "required": ["queue_url", "publish_queue_url", "admin_token_set"]},
        "span_export": {
            "type": ["object", "null"],
            "description": "The lean span exporter's counts since start: spans accepted, exported, dropped (the "
            "receiver slow or down, or its queue full), queued now, and failed export requests; null when tracing "
            "is off or on the SDK's export path (MQ_TRACING_EXPORT=sdk).",
            "properties": {name: _COUNT for name in ("accepted", "exported", "dropped", "queued", "failed_requests")},
        },
        "queues": {
            "type": "object",
            "description": "Each queue's state and counters, by its name (one entry in a one-queue service). The "
            "counters above are the totals over the queues; the pause state and rate limit above are the first "
            "queue's (the one the routes without a queue name act on).",
            "additionalProperties": {
                "type": "object",
                "required": [
                    "queue_url",
                    "handler",
                    "weight",
                    "pipeline_running",
                    "ready",
                    "not_ready_reason",
                    "in_flight",
                    "capacity",
                    "paused",
                    "paused_since",
                    "max_messages_per_s",
                    "pipeline",
                    "idempotency",
                ],
                "properties": {
                    "capacity": {"type": "integer", "minimum": 1, "description": "Its handlers at once at most."},
                    "idempotency": {"type": ["object", "null"], "description": "The queue's guard."},
                },
            },
        },
        "idempotency": {
            "type": ["object", "null"],
            "description": "The idempotency guard's counters (completed, skipped as duplicates, in progress "
            "elsewhere, store errors, unguarded) and the store's state; null when there is no guard. With several "
            "queues (a guard each, on one store): the counters summed, the longest run of store errors, and the "
            "first queue's problem, named.",
        },
    },
}
_TOTALS = ("received", "handled", "failed", "deleted", "released", "rejected")


def status(service: AdminService, liveness: Liveness) -> dict[str, Any]:
    """The /status body."""
    server = service.server
    alive_problem = liveness.problem()
    not_ready = not_ready_reason(service)
    return {
        "alive": alive_problem is None,
        "alive_problem": alive_problem,
        "pipeline_running": server.alive,
        "draining": service.draining,
        "ready": not_ready is None,
        "not_ready_reason": not_ready,
        "in_flight": sum(consumer.server.in_flight for consumer in service.consumers.values()),
        "max_in_flight": None if service.budget is None else service.budget.total,
        "paused": server.paused,
        "paused_since": server.paused_since,
        "max_messages_per_s": server.rate_limit,
        "pipeline": _totals(service),
        "publisher": service.publisher.stats(),
        "settings": shown_settings(service),
        "queues": {name: consumer.status() for name, consumer in service.consumers.items()},
        "idempotency": _idempotency(service),
        "span_export": None if service.hooks.span_export_stats is None else service.hooks.span_export_stats(),
    }


def _idempotency(service: AdminService) -> dict[str, Any] | None:
    """The idempotency guards' stats: the only guard's, or every queue's combined."""
    stats = {name: c.idempotency.stats() for name, c in service.consumers.items() if c.idempotency is not None}
    if len(stats) <= 1:
        return next(iter(stats.values()), None)
    worst = max(stats.values(), key=lambda entry: entry["consecutive_store_errors"])
    problem = next((f"queue {name}: {entry['problem']}" for name, entry in stats.items() if entry["problem"]), None)
    return {
        **{key: sum(entry[key] for entry in stats.values()) for key in COUNT_NAMES},
        "consecutive_store_errors": worst["consecutive_store_errors"],
        "last_store_error": worst["last_store_error"],
        "problem": problem,
    }


def _totals(service: AdminService) -> dict[str, Any]:
    """The first queue's pipeline snapshot, its counters summed over every queue."""
    snapshot = service.server.health.snapshot()
    for consumer in list(service.consumers.values())[1:]:
        health = consumer.server.health
        for name in _TOTALS:
            snapshot[name] += getattr(health, name)
    return snapshot


def shown_settings(service: AdminService) -> dict[str, Any]:
    """The settings without secrets, with the queue URLs in use (the embedded queue's, when there is one)."""
    summary = service.settings.summary()
    return {**summary, "queue_url": service.server.queue_url, "publish_queue_url": service.publisher.queue_url}


def status_group(service: AdminService, guard: BearerGuard, *, liveness: Liveness) -> RouteGroup:
    """The status route, behind the guard."""

    async def status_endpoint(request: Request) -> Response:
        return JSONResponse(status(service, liveness))

    operation = {
        "summary": "Liveness and readiness verdicts, pipeline and publisher counters, settings.",
        "responses": {"200": json_response("The status.", _STATUS)},
    }
    route = Route("/status", guard(status_endpoint), methods=["GET"])
    return RouteGroup([route], {"/status": {"get": guard.document(operation)}})
