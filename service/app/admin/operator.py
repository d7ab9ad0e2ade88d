"""The operator's routes: pause and resume receiving, the rate limit, the queues' depths, the last handler errors."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.actions import operation, read_body, upstream
from service.app.admin.auth import BearerGuard
from service.app.admin.errors import Refused, error_doc
from service.app.admin.openapi import json_response
from service.app.operations import ERRORS_KEPT
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
    "additionalProperties": False,
    "properties": {"paused": {"type": "boolean"}, "paused_since": {"type": ["number", "null"]}},
    "required": ["paused", "paused_since"],
}
LIMITS = {
    "type": "object",
    "additionalProperties": False,
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


def routes(service: OperatorService, guard: BearerGuard) -> list[BaseRoute]:
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
            if self._service.draining:
                raise Refused(409, "the service is draining: it receives nothing more")
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
        return JSONResponse({"errors": self._service.operations.errors.recent()})


def path_items(guard: BearerGuard) -> dict[str, Any]:
    """The OpenAPI path items of these routes."""
    state = json_response("Whether receiving is paused, and since when (epoch seconds).", PAUSE_STATE)
    draining = error_doc("The service is draining: it receives nothing more.")
    limits = json_response("The rate limit of this pod (null: none).", LIMITS)
    return {
        "/pause": {
            "post": operation(
                guard,
                "Stop receiving (messages in flight finish; nothing is drained). Idempotent.",
                {"200": state, "409": draining},
                body=PAUSE_BODY,
            )
        },
        "/resume": {
            "post": operation(guard, "Receive again. Idempotent.", {"200": state, "409": draining}, body=PAUSE_BODY)
        },
        "/limits": {
            "get": operation(guard, "The rate limit.", {"200": limits}),
            "put": operation(
                guard, "Set or remove the rate limit.", {"200": limits, "409": draining}, body=LIMITS_BODY
            ),
        },
        "/queues": {"get": operation(guard, "The queues' depths.", _QUEUES_RESPONSES)},
        "/errors": {
            "get": operation(
                guard,
                "The last handler errors, newest first.",
                {"200": json_response(f"The kept errors (at most {ERRORS_KEPT}).", _ERRORS)},
            )
        },
    }


_QUEUE_FIELDS = {
    "url": {"type": "string"},
    "name": {"type": "string"},
    "visible": {"type": "integer", "minimum": 0},
    "in_flight": {"type": "integer", "minimum": 0},
    "delayed": {"type": "integer", "minimum": 0},
}
QUEUE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": _QUEUE_FIELDS,
    "required": list(_QUEUE_FIELDS),
}
_CONSUMED_QUEUE = {
    **QUEUE,
    "properties": {
        **_QUEUE_FIELDS,
        "max_receive_count": {"type": ["integer", "null"], "description": "From its RedrivePolicy; null: none."},
    },
    "required": [*_QUEUE_FIELDS, "max_receive_count"],
}
_QUEUES_RESPONSES = {
    "200": json_response(
        "The consumed queue, its dead-letter queue (null without a RedrivePolicy), the publish queue when different.",
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "queue": _CONSUMED_QUEUE,
                "dead_letter_queue": {"oneOf": [QUEUE, {"type": "null"}]},
                "publish_queue": {"oneOf": [QUEUE, {"type": "null"}]},
            },
            "required": ["queue", "dead_letter_queue", "publish_queue"],
        },
    ),
    "502": error_doc("SQS refused or failed GetQueueAttributes (`problems` names SQS's code)."),
    "503": error_doc("The service has drained: the operations' SQS client is closed."),
}
_ERROR_FIELDS = {
    "message_id": {"type": "string"},
    "error_type": {"type": "string"},
    "error": {"type": "string"},
    "at": {"type": "number", "description": "Epoch seconds."},
    "receive_count": {"type": "integer"},
    "route": {"type": ["string", "null"]},
}
_ERRORS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "maxItems": ERRORS_KEPT,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": _ERROR_FIELDS,
                "required": list(_ERROR_FIELDS),
            },
        }
    },
}
