"""The dead-letter queue's routes: peek at its messages, redrive them (start, follow, cancel)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.actions import operation, read_body, upstream
from service.app.admin.auth import BearerGuard
from service.app.admin.bodies import query_integer
from service.app.admin.errors import Refused, error_doc
from service.app.admin.openapi import json_response
from service.app.admin.operator import QUEUE, OperatorService
from service.app.admin.problems import ERROR_KEY
from service.app.operations import NoDeadLetterQueue
from service.errors import SQSError
from service.sqs.queues import MAX_PEEK, is_missing_queue
from service.sqs.redrive import RedriveConflict

# SQS's own limit for MaxNumberOfMessagesPerSecond of a message move task.
MAX_REDRIVE_RATE_PER_S = 500

REDRIVE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_messages_per_s": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_REDRIVE_RATE_PER_S,
            "description": "Messages moved per second at most (default: as fast as SQS goes).",
        },
        "destination": {
            "anyOf": [{"const": "source"}, {"type": "string", "pattern": "^https?://", "maxLength": 2048}],
            "description": '"source" (default): the queue the messages came from; or an SQS queue URL.',
            ERROR_KEY: 'is not "source" nor an SQS queue URL (http:// or https://)',
        },
    },
}
NO_REDRIVE = {"state": "none", "moved": 0, "to_move": 0, "started_at": None, "finished_at": None, "failure": None}
PEEK_NOTE = (
    "SQS has no peek: these messages were received with a short visibility timeout and handed back at once; "
    "each peek raises their receive count."
)


def routes(service: OperatorService, guard: BearerGuard) -> list[BaseRoute]:
    """The routes, each behind `guard`."""
    endpoints = _Endpoints(service)
    return [
        Route("/dlq/messages", guard(endpoints.messages), methods=["GET"]),
        Route("/dlq/redrive", guard(endpoints.redrive), methods=["GET", "POST", "DELETE"]),
    ]


class _Endpoints:
    def __init__(self, service: OperatorService) -> None:
        self._service = service

    async def messages(self, request: Request) -> Response:
        """Peek at the DLQ."""
        operations = self._service.operations
        try:
            limit = query_integer(request, "limit", default=MAX_PEEK, low=1, high=MAX_PEEK)
            dlq = await _dead_letter_queue(self._service)
            messages = await operations.peek(limit)
        except Refused as refused:
            return refused.response()
        except SQSError as error:
            return upstream(error).response()
        except RuntimeError as error:  # drained meanwhile: the operations' client is closed
            return Refused(503, str(error)).response()
        operations.audit("dlq.peek", {"limit": limit}, f"{len(messages)} messages", 200)
        return JSONResponse({"queue": dlq, "messages": messages, "note": PEEK_NOTE})

    async def redrive(self, request: Request) -> Response:
        """GET: the last redrive; POST: start one; DELETE: cancel the running one."""
        if request.method == "GET":
            current = self._service.operations.redrive.current
            return JSONResponse(NO_REDRIVE if current is None else current.as_dict())
        action = "dlq.redrive" if request.method == "POST" else "dlq.redrive.cancel"
        asked: dict[str, Any] | None = None
        try:
            if request.method == "POST":
                asked = await read_body(request, REDRIVE_BODY)
                status, answer = 202, await self._start(asked)
            else:
                status, answer = 200, await self._cancel()
        except Refused as refused:
            self._service.operations.audit(action, asked, f"refused: {refused}", refused.status)
            return refused.response()
        self._service.operations.audit(action, asked, answer["state"], status, redrive=answer)
        return JSONResponse(answer, status_code=status)

    async def _start(self, asked: dict[str, Any]) -> dict[str, Any]:
        if self._service.draining:
            raise Refused(503, "the service is draining")
        destination, per_s = asked.get("destination", "source"), asked.get("max_messages_per_s")
        await _dead_letter_queue(self._service)
        try:
            task = await self._service.operations.start_redrive(
                destination_url=None if destination == "source" else destination,
                per_s=None if per_s is None else int(per_s),  # JSON Schema's integers include 213.0
            )
        except RedriveConflict as conflict:
            raise Refused(409, str(conflict)) from conflict
        except RuntimeError as error:  # drained meanwhile: no client, no task group
            raise Refused(503, str(error)) from error
        except SQSError as error:
            if is_missing_queue(error):
                raise Refused(404, f"destination: the queue {destination} does not exist") from error
            raise upstream(error) from error
        return task.as_dict()

    async def _cancel(self) -> dict[str, Any]:
        try:
            task = await self._service.operations.redrive.cancel()
        except SQSError as error:
            raise upstream(error) from error
        if task is None:
            raise Refused(409, "no redrive is running")
        return task.as_dict()


async def _dead_letter_queue(service: OperatorService) -> dict[str, Any]:
    try:
        return (await service.operations.dead_letter_queue()).as_dict()
    except NoDeadLetterQueue as missing:
        raise Refused(404, str(missing)) from missing
    except SQSError as error:
        raise upstream(error) from error
    except RuntimeError as error:  # drained: the operations' client is closed
        raise Refused(503, str(error)) from error


_MESSAGE_FIELDS = {
    "message_id": {"type": "string"},
    "body": {"type": "string"},
    "body_truncated": {"type": "boolean"},
    "body_length": {"type": "integer", "minimum": 0},
    "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    "message_attributes": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"DataType": {"type": "string"}, "StringValue": {"type": "string"}},
        },
    },
    "receive_count": {"type": "integer", "minimum": 0},
    "sent_at": {"type": ["string", "null"], "format": "date-time"},
}
_MESSAGE = {
    "type": "object",
    "additionalProperties": False,
    "properties": _MESSAGE_FIELDS,
    "required": list(_MESSAGE_FIELDS),
}
_EPOCH_OR_NULL = {"type": ["number", "null"], "description": "Epoch seconds; null before any redrive."}
_REDRIVE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "state": {"enum": ["none", "running", "completed", "cancelled", "failed"], "description": "none: not yet"},
        "moved": {"type": "integer", "minimum": 0},
        "to_move": {"type": "integer", "minimum": 0},
        "started_at": _EPOCH_OR_NULL,
        "finished_at": {"type": ["number", "null"], "description": "Epoch seconds; null while running or before."},
        "failure": {"type": ["string", "null"]},
        "mode": {"enum": ["sqs", "client"], "description": "sqs: a StartMessageMoveTask; client: moved by this pod."},
        "source": {"type": "string", "description": "The dead-letter queue's URL."},
        "destination": {"type": "string", "description": '"source" or a queue URL.'},
        "max_messages_per_s": {"type": ["integer", "null"]},
    },
    "required": ["state", "moved", "to_move", "started_at", "finished_at", "failure"],
}
_STARTED_ONLY = ["mode", "source", "destination", "max_messages_per_s"]
_STARTED = {
    **_REDRIVE,
    "required": ["state", "moved", "to_move", "started_at", "finished_at", "failure", *_STARTED_ONLY],
}


_NO_DLQ = error_doc("The queue has no dead-letter queue.")
_SQS_FAILED = error_doc("SQS refused or failed a call (`problems` names SQS's code).")
_DRAINED = error_doc("The service is draining or drained.")
_PEEKED = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "queue": QUEUE,
        "messages": {"type": "array", "maxItems": MAX_PEEK, "items": _MESSAGE},
        "note": {"type": "string"},
    },
    "required": ["queue", "messages", "note"],
}
_PEEK_RESPONSES = {
    "200": json_response("The messages (bodies over 4,096 characters truncated, with `body_truncated`).", _PEEKED),
    "404": _NO_DLQ,
    "422": error_doc(f"`limit` is not an integer from 1 to {MAX_PEEK}."),
    "502": _SQS_FAILED,
    "503": _DRAINED,
}
_START_RESPONSES = {
    "202": json_response("Started.", _STARTED),
    "404": error_doc("The queue has no dead-letter queue, or the destination queue does not exist."),
    "409": error_doc("A redrive is already running."),
    "502": _SQS_FAILED,
    "503": _DRAINED,
}
_CANCEL_RESPONSES = {
    "200": json_response("The redrive, cancelled or still stopping.", _STARTED),
    "409": error_doc("No redrive is running."),
    "502": _SQS_FAILED,
}
_LIMIT_PARAMETER = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PEEK, "default": MAX_PEEK},
}


def path_items(guard: BearerGuard) -> dict[str, Any]:
    """The OpenAPI path items of these routes."""
    peek = operation(
        guard,
        f"Up to `limit` (1-{MAX_PEEK}) of the DLQ's messages; received and handed back at once (no peek in SQS).",
        _PEEK_RESPONSES,
    )
    peek["parameters"] = [_LIMIT_PARAMETER]
    last = {"200": json_response("The redrive (`none` before any, with null times).", _REDRIVE)}
    return {
        "/dlq/messages": {"get": peek},
        "/dlq/redrive": {
            "get": operation(guard, "The last redrive this pod started (`none` before any).", last),
            "post": operation(
                guard,
                "Start moving the DLQ's messages back to their source queue (or to `destination`).",
                _START_RESPONSES,
                body=REDRIVE_BODY,
            ),
            "delete": operation(guard, "Cancel the running redrive (after the batch in progress).", _CANCEL_RESPONSES),
        },
    }
