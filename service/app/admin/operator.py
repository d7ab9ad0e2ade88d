"""The operator's routes: pause and resume receiving, the rate limit, the queues' depths, the last handler errors."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.actions import ERROR_SCHEMA, Guard, Refused, json_content, operation, read_body, upstream
from service.errors import SQSError

if TYPE_CHECKING:
    from service.app.operations import Operations
    from service.consumer.server import Server

# As MQ_MAX_MESSAGES_PER_S allows; a typo like 1e9 is refused rather than taken as "no limit".
MAX_RATE_LIMIT_PER_S = 1_000_000

_REASON = {"type": "string", "maxLength": 500, "description": "Why (kept in the audit log line)."}
PAUSE_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {"reason": _REASON}}
LIMITS_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["max_messages_per_s"],
    "properties": {
        "max_messages_per_s": {
            "type": ["number", "null"],
            "minimum": 0.01,
            "maximum": MAX_RATE_LIMIT_PER_S,
            "description": "Messages per second this pod starts at most; null removes the limit.",
        }
    },
}
PAUSE_STATE = {
    "type": "object",
    "properties": {"paused": {"type": "boolean"}, "paused_since": {"type": ["number", "null"]}},
    "required": ["paused", "paused_since"],
}
LIMITS = {
    "type": "object",
    "properties": {"max_messages_per_s": {"type": ["number", "null"]}},
    "required": ["max_messages_per_s"],
}


class OperatorService(Protocol):
    """What these routes need from the running service (the Runtime)."""

    server: Server
    operations: Operations

    @property
    def draining(self) -> bool:
        """True from the moment a drain was asked for."""
        ...


def routes(service: OperatorService, guard: Guard) -> list[BaseRoute]:
    """The routes, each behind `guard`."""
    endpoints = _Endpoints(service)
    return [
        Route("/pause", guard(endpoints.pause), methods=["POST"]),
        Route("/resume", guard(endpoints.resume), methods=["POST"]),
        Route("/limits", guard(endpoints.limits), methods=["GET", "PUT"]),
        Route("/queues", guard(endpoints.queues), methods=["GET"]),
        Route("/errors", guard(endpoints.errors), methods=["GET"]),
    ]


def pause_state(server: Server) -> dict[str, Any]:
    """`{"paused", "paused_since"}` (epoch seconds) for /pause, /resume and /status."""
    return {"paused": server.paused, "paused_since": server.paused_since}


class _Endpoints:
    def __init__(self, service: OperatorService) -> None:
        self._service = service

    async def pause(self, request: Request) -> Response:
        """Stop receiving; messages in flight finish."""
        return await self._switch(request, "pause", pause=True)

    async def resume(self, request: Request) -> Response:
        """Receive again."""
        return await self._switch(request, "resume", pause=False)

    async def _switch(self, request: Request, action: str, *, pause: bool) -> Response:
        operations = self._service.operations
        try:
            asked = await read_body(request, PAUSE_BODY)
            if self._service.draining:
                raise Refused(409, "the service is draining: it receives nothing more")
        except Refused as refused:
            operations.audit(action, None, f"refused: {refused}", refused.status)
            return refused.response()
        server = self._service.server
        if server.paused == pause:
            outcome = f"already {'paused' if pause else 'receiving'}"
        else:
            if pause:
                server.pause()
            else:
                server.resume()
                operations.resumed_at = time.monotonic()
            outcome = "paused" if pause else "resumed"
        operations.audit(action, asked, outcome, 200)
        return JSONResponse(pause_state(server))

    async def limits(self, request: Request) -> Response:
        """GET: the rate limit; PUT: set it."""
        server = self._service.server
        if request.method == "GET":
            return JSONResponse({"max_messages_per_s": server.rate_limit})
        try:
            asked = await read_body(request, LIMITS_BODY)
        except Refused as refused:
            self._service.operations.audit("limits", None, f"refused: {refused}", refused.status)
            return refused.response()
        per_s = asked["max_messages_per_s"]
        server.set_rate_limit(None if per_s is None else float(per_s))
        outcome = "no limit" if per_s is None else f"at most {per_s:g} messages/s"
        self._service.operations.audit("limits", asked, outcome, 200)
        return JSONResponse({"max_messages_per_s": server.rate_limit})

    async def queues(self, request: Request) -> Response:
        """The queues' depths (cached for a few seconds)."""
        try:
            snapshot = await self._service.operations.views.snapshot()
        except SQSError as error:
            return upstream(error).response()
        except RuntimeError as error:  # drained: the operations' client is closed
            return Refused(503, str(error)).response()
        return JSONResponse(snapshot.as_dict())

    async def errors(self, request: Request) -> Response:
        """The last handler errors, newest first."""
        operations = self._service.operations
        recent = [] if operations.errors is None else operations.errors.recent()
        return JSONResponse({"errors": recent})


def path_items(*, protected: bool) -> dict[str, Any]:
    """The OpenAPI path items of these routes."""
    state = json_content(PAUSE_STATE, "Whether receiving is paused, and since when (epoch seconds).")
    draining = json_content(ERROR_SCHEMA, "The service is draining.")
    limits = json_content(LIMITS, "The rate limit of this pod (null: none).")
    return {
        "/pause": {
            "post": operation(
                "Stop receiving (messages in flight finish; nothing is drained). Idempotent.",
                {"200": state, "409": draining},
                protected=protected,
                body=PAUSE_BODY,
            )
        },
        "/resume": {
            "post": operation(
                "Receive again. Idempotent.", {"200": state, "409": draining}, protected=protected, body=PAUSE_BODY
            )
        },
        "/limits": {
            "get": operation("The rate limit.", {"200": limits}, protected=protected),
            "put": operation("Set or remove the rate limit.", {"200": limits}, protected=protected, body=LIMITS_BODY),
        },
        "/queues": {"get": operation("The queues' depths.", _QUEUES_RESPONSES, protected=protected)},
        "/errors": {
            "get": operation(
                "The last handler errors, newest first.",
                {"200": json_content(_ERRORS, "The kept errors (at most 50).")},
                protected=protected,
            )
        },
    }


_QUEUE = {
    "type": "object",
    "properties": {
        "url": {"type": "string"},
        "name": {"type": "string"},
        "visible": {"type": "integer"},
        "in_flight": {"type": "integer"},
        "delayed": {"type": "integer"},
        "max_receive_count": {"type": ["integer", "null"]},
    },
    "required": ["url", "name", "visible", "in_flight", "delayed"],
}
_QUEUES_RESPONSES = {
    "200": json_content(
        {
            "type": "object",
            "properties": {
                "queue": _QUEUE,
                "dead_letter_queue": {"oneOf": [_QUEUE, {"type": "null"}]},
                "publish_queue": {"oneOf": [_QUEUE, {"type": "null"}]},
            },
            "required": ["queue", "dead_letter_queue", "publish_queue"],
        },
        "The consumed queue, its dead-letter queue (null without a RedrivePolicy), the publish queue when different.",
    ),
    "502": json_content(ERROR_SCHEMA, "SQS refused or failed GetQueueAttributes."),
    "503": json_content(ERROR_SCHEMA, "The service has drained: the operations' SQS client is closed."),
}
_ERRORS = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message_id": {"type": "string"},
                    "error_type": {"type": "string"},
                    "error": {"type": "string"},
                    "at": {"type": "number"},
                    "receive_count": {"type": "integer"},
                    "route": {"type": ["string", "null"]},
                },
            },
        }
    },
}
