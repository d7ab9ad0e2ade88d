"""The dead-letter queue's routes: peek at its messages, redrive them (start, follow, cancel)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.actions import ERROR_SCHEMA, Guard, Refused, json_content, operation, read_body, upstream
from service.app.admin.operator import OperatorService
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
            "type": "string",
            "minLength": 1,
            "maxLength": 2048,
            "description": '"source" (default): the queue the messages came from; or an SQS queue URL.',
        },
    },
}
NO_REDRIVE = {"state": "none", "moved": 0, "to_move": 0, "started_at": None, "finished_at": None, "failure": None}
PEEK_NOTE = (
    "SQS has no peek: these messages were received with a short visibility timeout and handed back at once; "
    "each peek raises their receive count."
)


def routes(service: OperatorService, guard: Guard) -> list[BaseRoute]:
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
            limit = _limit(request.query_params.get("limit", str(MAX_PEEK)))
            dlq = await _dead_letter_queue(self._service)
            messages = await operations.peek(limit)
        except Refused as refused:
            return refused.response()
        except SQSError as error:
            return upstream(error).response()
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
        destination = asked.get("destination", "source")
        if destination != "source" and not destination.startswith(("http://", "https://")):
            raise Refused(422, f'destination: must be "source" or an SQS queue URL, not {destination!r}')
        await _dead_letter_queue(self._service)
        try:
            task = await self._service.operations.start_redrive(
                destination_url=None if destination == "source" else destination,
                per_s=asked.get("max_messages_per_s"),
            )
        except RedriveConflict as conflict:
            raise Refused(409, str(conflict)) from conflict
        except SQSError as error:
            if is_missing_queue(error):
                raise Refused(422, f"destination: the queue {destination} does not exist") from error
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


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PEEK:
        raise Refused(422, f"limit: must be an integer from 1 to {MAX_PEEK}, not {raw!r}")
    return int(raw)


async def _dead_letter_queue(service: OperatorService) -> dict[str, Any]:
    try:
        return (await service.operations.dead_letter_queue()).as_dict()
    except NoDeadLetterQueue as missing:
        raise Refused(404, str(missing)) from missing
    except SQSError as error:
        raise upstream(error) from error
    except RuntimeError as error:  # drained: the operations' client is closed
        raise Refused(503, str(error)) from error


_MESSAGE = {
    "type": "object",
    "properties": {
        "message_id": {"type": "string"},
        "body": {"type": "string"},
        "body_truncated": {"type": "boolean"},
        "body_length": {"type": "integer"},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "message_attributes": {"type": "object"},
        "receive_count": {"type": "integer"},
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["message_id", "body", "body_truncated", "attributes", "message_attributes", "receive_count"],
}
_REDRIVE = {
    "type": "object",
    "properties": {
        "state": {"enum": ["none", "running", "completed", "cancelled", "failed"], "description": "none: not yet"},
        "moved": {"type": "integer"},
        "to_move": {"type": "integer"},
        "started_at": {"type": "number", "description": "Epoch seconds."},
        "finished_at": {"type": ["number", "null"]},
        "failure": {"type": ["string", "null"]},
        "mode": {"enum": ["sqs", "client"], "description": "sqs: a StartMessageMoveTask; client: moved by this pod."},
        "source": {"type": "string"},
        "destination": {"type": "string"},
        "max_messages_per_s": {"type": ["integer", "null"]},
    },
    "required": ["state", "moved", "to_move", "started_at", "failure"],
}


_NO_DLQ = json_content(ERROR_SCHEMA, "The queue has no dead-letter queue.")
_SQS_FAILED = json_content(ERROR_SCHEMA, "SQS refused or failed a call.")
_DRAINED = json_content(ERROR_SCHEMA, "The service is draining or drained.")
_PEEKED = {
    "type": "object",
    "properties": {"queue": {"type": "object"}, "messages": {"type": "array", "items": _MESSAGE}},
}
_PEEK_RESPONSES = {
    "200": json_content(_PEEKED, "The messages (bodies over 4,096 characters truncated, with `body_truncated`)."),
    "404": _NO_DLQ,
    "422": json_content(ERROR_SCHEMA, "`limit` is not an integer from 1 to 10."),
    "502": _SQS_FAILED,
    "503": _DRAINED,
}
_START_RESPONSES = {
    "202": json_content(_REDRIVE, "Started."),
    "404": _NO_DLQ,
    "409": json_content(ERROR_SCHEMA, "A redrive is already running."),
    "422": json_content(ERROR_SCHEMA, "A bad body, or no such destination queue."),
    "502": _SQS_FAILED,
    "503": _DRAINED,
}
_CANCEL_RESPONSES = {
    "200": json_content(_REDRIVE, "The redrive, cancelled or still stopping."),
    "409": json_content(ERROR_SCHEMA, "No redrive is running."),
    "502": _SQS_FAILED,
}
_LIMIT_PARAMETER = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PEEK},
}


def path_items(*, protected: bool) -> dict[str, Any]:
    """The OpenAPI path items of these routes."""
    peek = operation(
        "Up to `limit` (1-10, default 10) of the DLQ's messages; received and handed back at once (no peek in SQS).",
        _PEEK_RESPONSES,
        protected=protected,
    )
    peek["parameters"] = [_LIMIT_PARAMETER]
    last = {"200": json_content(_REDRIVE, "The redrive.")}
    return {
        "/dlq/messages": {"get": peek},
        "/dlq/redrive": {
            "get": operation("The last redrive this pod started (`none` before any).", last, protected=protected),
            "post": operation(
                "Start moving the DLQ's messages back to their source queue (or to `destination`).",
                _START_RESPONSES,
                protected=protected,
                body=REDRIVE_BODY,
            ),
            "delete": operation(
                "Cancel the running redrive (after the batch in progress).", _CANCEL_RESPONSES, protected=protected
            ),
        },
    }
