"""`POST /publish`: one message or a batch, validated once against the request schema, then sent by the Publisher.

The JSON Schema (publish_schema.py) decides the request's shape; the Publisher's own check (`check_entry`: SQS's
rules and its configured size limit) decides each message; only when every message passed is anything sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.app.admin.auth import BearerGuard
from service.app.admin.bodies import MAX_JSON_DEPTH, read_json
from service.app.admin.errors import Refused, error_doc, error_response
from service.app.admin.openapi import JSON, RouteGroup, json_response, ref
from service.app.admin.protocol import AdminService
from service.app.admin.publish_schema import QueueKind, RequestValidator, request_schema
from service.errors import ClosedError, PublishError
from service.publishing.entry import CheckedEntry, build_entry
from service.publishing.publisher import Publisher

MAX_REQUEST_BYTES = 10 * 1_048_576
# With large payloads in S3 a message may be far larger than SQS's limit: a request may then hold one such
# message, escaped as JSON, and the rest of a request.
_JSON_ESCAPE_ALLOWANCE = 2
_REQUEST_OVERHEAD_BYTES = 65_536


def max_request_bytes(publisher: Publisher) -> int:
    """The largest /publish request read: 10 MiB, or room for one message of the Publisher's largest size."""
    largest = _JSON_ESCAPE_ALLOWANCE * publisher.max_message_bytes + _REQUEST_OVERHEAD_BYTES
    return max(MAX_REQUEST_BYTES, largest)


_INVALID = 422
_DRAINING = "the service is draining: it publishes nothing more"


def queue_kind(publisher: Publisher) -> QueueKind:
    """What the publish queue accepts (known once the Publisher started)."""
    return QueueKind(fifo=publisher.fifo, content_based_deduplication=bool(publisher.content_based_deduplication))


def publish_group(
    service: AdminService, guard: BearerGuard, *, path: str = "/publish", publisher: Publisher | None = None
) -> RouteGroup:
    """The publish route, behind the guard, with the schema of the publish queue's type (`publisher`: another
    queue's Publisher, at another `path`)."""
    publisher = publisher or service.publisher
    kind, max_batch = queue_kind(publisher), service.settings.publish_max_batch
    validator = RequestValidator(kind, max_batch)
    limit = max_request_bytes(publisher)

    async def publish(request: Request) -> Response:
        if service.draining:
            return error_response(503, _DRAINING)
        try:
            data = await read_json(request, limit)
        except Refused as refused:
            return refused.response()
        problems = validator.problems(data)
        if problems:
            return error_response(_INVALID, "invalid request", problems=problems)
        return await _send(publisher, data)

    operation = guard.document(_operation(kind, max_batch, limit))
    components = {"schemas": _SCHEMAS, **guard.components()}
    route = Route(path, guard(publish), methods=["POST"])
    return RouteGroup([route], {path: {"post": operation}}, components)


def queue_publish_groups(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """`POST /queues/{name}/publish` for each consumed queue of a service with several: each with its queue's
    request schema (a literal path per queue, since a FIFO queue's requests differ from a standard queue's)."""
    groups = [
        publish_group(service, guard, path=f"/queues/{name}/publish", publisher=publisher)
        for name, publisher in service.publishers.items()
    ]
    return RouteGroup(
        [route for group in groups for route in group.routes],
        {path: item for group in groups for path, item in group.paths.items()},
        {"schemas": _SCHEMAS, **guard.components()},
    )


async def _send(publisher: Publisher, data: dict[str, Any]) -> Response:
    batch = "messages" in data
    try:
        entries, refused = _checked(data["messages"] if batch else [data], publisher)
    except ClosedError:  # a drain began while the request was read
        return error_response(503, _DRAINING)
    if refused:
        return error_response(_INVALID, "messages refused, nothing was sent", problems=refused)
    results = await asyncio.gather(*(publisher.publish_checked(entry) for entry in entries), return_exceptions=True)
    return publish_response(results, batch=batch)


def _checked(items: list[dict[str, Any]], publisher: Publisher) -> tuple[list[CheckedEntry], list[dict[str, Any]]]:
    """Every message checked by the Publisher before any is sent: (entries, refusals)."""
    entries: list[CheckedEntry] = []
    refused: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            entries.append(publisher.check_entry(_entry(item)))
        except PublishError as error:
            refused.append({"index": index, "code": error.code, "message": error.sqs_message})
    return entries, refused


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    body = item["body"]
    attributes = {
        name: {"DataType": "String", "StringValue": value} if isinstance(value, str) else value
        for name, value in item.get("message_attributes", {}).items()
    }
    delay = item.get("delay_s")
    return build_entry(
        body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
        message_attributes=attributes,
        delay_s=None if delay is None else int(delay),  # JSON Schema counts 5.0 as an integer
        **{key: item.get(key) for key in ("route", "partition_key", "group_id", "deduplication_id")},
    )


def publish_response(results: list[str | BaseException], *, batch: bool) -> Response:
    """The answer to a publish request, from each message's MessageId or error."""
    outcomes = [_outcome(result) for result in results]
    failed = [outcome["error"] for outcome in outcomes if "error" in outcome]
    if not failed:
        status = 200
    elif len(failed) < len(outcomes):
        status = 207
    elif all(error["sender_fault"] for error in failed):
        status = _INVALID
    else:
        status = 503 if all(error["code"] == "Closed" for error in failed) else 502
    if not batch:
        return JSONResponse(outcomes[0], status_code=status)
    summary = {"published": len(outcomes) - len(failed), "failed": len(failed), "results": outcomes}
    return JSONResponse(summary, status_code=status)


def _outcome(result: str | BaseException) -> dict[str, Any]:
    if isinstance(result, str):
        return {"message_id": result}
    if isinstance(result, PublishError):
        return {"error": {"code": result.code, "message": result.sqs_message, "sender_fault": result.sender_fault}}
    if isinstance(result, ClosedError):
        return {"error": {"code": "Closed", "message": str(result), "sender_fault": False}}
    raise result


_SCHEMAS: dict[str, Any] = {
    "Published": {
        "type": "object",
        "additionalProperties": False,
        "required": ["message_id"],
        "properties": {"message_id": {"type": "string"}},
    },
    "NotPublished": {
        "type": "object",
        "additionalProperties": False,
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "message", "sender_fault"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "sender_fault": {"type": "boolean"},
                },
            }
        },
    },
    "BatchOutcome": {
        "type": "object",
        "additionalProperties": False,
        "required": ["published", "failed", "results"],
        "properties": {
            "published": {"type": "integer", "minimum": 0},
            "failed": {"type": "integer", "minimum": 0},
            "results": {"type": "array", "items": {"oneOf": [ref("Published"), ref("NotPublished")]}},
        },
    },
}


def _either(*names: str) -> dict[str, Any]:
    return {"oneOf": [ref(name) for name in names]}


def _operation(kind: QueueKind, max_batch: int, limit: int) -> dict[str, Any]:
    responses = {
        "200": json_response("Every message was stored by SQS.", _either("Published", "BatchOutcome")),
        "207": json_response("A batch of which some messages were stored and some failed.", ref("BatchOutcome")),
        "400": error_doc(f"The body is empty, not JSON, or nested over {MAX_JSON_DEPTH} deep."),
        "413": error_doc(f"The body is over {limit} bytes."),
        "422": json_response(
            "The request does not match the schema or holds NaN/Infinity, or a message breaks SQS's rules "
            "(its size included): "
            "nothing was sent. Or SQS refused every message as the sender's fault.",
            _either("Error", "NotPublished", "BatchOutcome"),
        ),
        "502": json_response("SQS failed every message.", _either("NotPublished", "BatchOutcome")),
        "503": json_response(
            "The service is draining (nothing sent), or the Publisher shut down before sending.",
            _either("Error", "NotPublished", "BatchOutcome"),
        ),
    }
    body = {"required": True, "content": {JSON: {"schema": request_schema(kind, max_batch)}}}
    summary = "Publish one message or a batch; answers once SQS stored or refused each."
    return {"summary": summary, "requestBody": body, "responses": responses}
