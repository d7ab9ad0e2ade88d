"""The admin API: probes, drain, publish, status and its own OpenAPI document, as a Starlette app factory."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin import dlq, operator, pages
from service.app.admin.schema import openapi_document, request_schema, schema_errors
from service.errors import ClosedError, PublishError
from service.publishing.entry import MAX_MESSAGE_BYTES, build_entry, checked_entry

if TYPE_CHECKING:
    from service.app.config import Settings
    from service.app.operations import Operations
    from service.consumer.server import Server
    from service.publishing.publisher import Publisher

# /healthz fails when no receive attempt completed for 3 long polls plus this margin, which covers the
# receive backoff (at most 30 s) and an HTTP read timeout (60 s), so a slow or unreachable SQS never fails it.
LIVENESS_MARGIN_S = 90.0

Endpoint = Callable[[Request], Awaitable[Response]]


class AdminService(Protocol):
    """What the admin API needs from the running service (the Runtime)."""

    settings: Settings
    server: Server
    publisher: Publisher
    operations: Operations

    @property
    def draining(self) -> bool:
        """True from the moment a drain was asked for."""
        ...

    async def drain(self) -> dict[str, Any]:
        """Drain the service (once); every caller gets the same summary."""
        ...


def receive_stall_limit_s(wait_time_seconds: int) -> float:
    """How long the receive loop may go without completing a receive attempt before /healthz fails."""
    return 3 * wait_time_seconds + LIVENESS_MARGIN_S


class _Liveness:
    """Decides /healthz. A receive loop that waits for capacity (every handler busy) is not stuck."""

    def __init__(self, service: AdminService, stall_limit_s: float) -> None:
        self._service = service
        self._stall_limit_s = stall_limit_s
        self._busy_at = 0.0

    def problem(self) -> str | None:
        """Why the service is not alive, or None."""
        server = self._service.server
        health = server.health
        if health.stopped and not health.draining:  # a requested shutdown always drains first
            return "the message pipeline stopped by itself"
        if health.stopped or health.draining:
            return None
        now = time.monotonic()
        # Paused on purpose (/pause), or every handler busy: the receive loop waits, it is not stuck.
        if server.paused or server.in_flight >= server.processor.capacity:
            self._busy_at = now
            return None
        resumed_at = self._service.operations.resumed_at
        last = max(health.last_receive_attempt_at or health.started_at, self._busy_at, resumed_at)
        if now - last > self._stall_limit_s:
            return f"no receive attempt completed for {now - last:.0f} s"
        return None


def create_app(
    service: AdminService,
    *,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    receive_stall_s: float | None = None,
) -> Starlette:
    """The admin app. `metrics` renders `GET /metrics` as (body, content type); without it the route is empty."""
    settings = service.settings
    stall_s = receive_stall_limit_s(settings.wait_time_seconds) if receive_stall_s is None else receive_stall_s
    endpoints = _Endpoints(service, _Liveness(service, stall_s))
    guard = _bearer_guard(settings.admin_token)
    admin_routes: list[BaseRoute] = [
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/readyz", endpoints.readyz, methods=["GET"]),
        Route("/drain", guard(endpoints.drain), methods=["GET", "POST"]),
        Route("/publish", guard(endpoints.publish), methods=["POST"]),
        Route("/status", guard(endpoints.status), methods=["GET"]),
        Route("/openapi.json", endpoints.openapi, methods=["GET"]),
        Route("/metrics", _metrics_endpoint(metrics), methods=["GET"]),
    ]
    for group in (operator, dlq, pages):
        admin_routes += group.routes(service, guard)
        endpoints.document["paths"].update(group.path_items(protected=settings.admin_token is not None))
    return Starlette(routes=admin_routes)


def _metrics_endpoint(render: Callable[[], tuple[bytes, str]] | None) -> Endpoint:
    async def metrics(request: Request) -> Response:
        body, content_type = render() if render is not None else (b"", "text/plain; version=0.0.4; charset=utf-8")
        return Response(body, media_type=content_type)

    return metrics


class _Endpoints:
    """The admin routes' endpoints, bound to one service."""

    def __init__(self, service: AdminService, liveness: _Liveness) -> None:
        settings = service.settings
        self._service = service
        self._liveness = liveness
        self._schema = request_schema(settings.publish_max_batch)
        self.document = openapi_document(settings.publish_max_batch, protected=settings.admin_token is not None)

    async def healthz(self, request: Request) -> Response:
        """Liveness."""
        problem = self._liveness.problem()
        if problem is not None:
            return JSONResponse({"alive": False, "reason": problem}, status_code=503)
        return JSONResponse({"alive": True})

    async def readyz(self, request: Request) -> Response:
        """Readiness."""
        reason = _not_ready_reason(self._service)
        if reason is not None:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    async def drain(self, request: Request) -> Response:
        """Drain, answering when done."""
        return JSONResponse(await self._service.drain())

    async def publish(self, request: Request) -> Response:
        """Publish one message or a batch."""
        return await _publish(request, self._service, self._schema)

    async def status(self, request: Request) -> Response:
        """State and counters."""
        return JSONResponse(_status(self._service))

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI document."""
        return JSONResponse(self.document)


def _not_ready_reason(service: AdminService) -> str | None:
    server = service.server
    health = server.health
    if service.draining:
        return "draining"
    if not server.alive:
        return "the message pipeline is not running"
    return health.not_ready_reason()


def _status(service: AdminService) -> dict[str, Any]:
    server = service.server
    return {
        "alive": server.alive,
        "draining": service.draining,
        "ready": _not_ready_reason(service) is None,
        "in_flight": server.in_flight,
        **operator.pause_state(server),
        "max_messages_per_s": server.rate_limit,
        "pipeline": server.health.snapshot(),
        "publisher": service.publisher.stats(),
        "settings": service.settings.summary(),
    }


def _bearer_guard(token: str | None) -> Callable[[Endpoint], Endpoint]:
    """Wraps an endpoint so it needs `Authorization: Bearer <token>`; no token configured: no check."""
    expected = None if token is None else f"Bearer {token}".encode()

    def wrap(endpoint: Endpoint) -> Endpoint:
        if expected is None:
            return endpoint

        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"error": "a valid 'Authorization: Bearer <token>' header is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return await endpoint(request)

        return guarded

    return wrap


# ---- POST /publish -------------------------------------------------------------------------------------------

MAX_REQUEST_BYTES = 10 * 1_048_576
_PROBLEM_INVALID = 422


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _publish(request: Request, service: AdminService, schema: dict[str, Any]) -> Response:
    if service.draining:
        return JSONResponse({"error": "the service is draining: it publishes nothing more"}, status_code=503)
    try:
        data = await _read_json(request)
    except _Rejected as rejected:
        return JSONResponse({"error": str(rejected)}, status_code=rejected.status)
    problems = schema_errors(schema, data)
    if problems:
        status = max(status for status, _ in problems)
        return JSONResponse({"error": "invalid request", "problems": [text for _, text in problems]}, status)
    batch = "messages" in data
    entries, refused = _entries(data["messages"] if batch else [data], service.publisher)
    if refused:
        return JSONResponse({"error": "messages refused, nothing was sent", "problems": refused}, _PROBLEM_INVALID)
    publisher = service.publisher
    results = await asyncio.gather(*(publisher.publish_entry(entry) for entry in entries), return_exceptions=True)
    return _publish_response(results, batch=batch)


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _Rejected(413, f"the request body is larger than {MAX_REQUEST_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_REQUEST_BYTES:
            raise _Rejected(413, f"the request body is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise _Rejected(400, f"the request body is not valid JSON: {exc}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _entries(items: list[dict[str, Any]], publisher: Publisher) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every message checked against SQS's rules before any is sent: (entries, refusals)."""
    entries: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        body = item["body"]
        attributes = {
            name: {"DataType": "String", "StringValue": value} if isinstance(value, str) else value
            for name, value in item.get("message_attributes", {}).items()
        }
        try:
            entry = build_entry(
                body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
                message_attributes=attributes,
                **{key: item.get(key) for key in ("route", "partition_key", "delay_s", "group_id", "deduplication_id")},
            )
            entries.append(
                checked_entry(
                    entry,
                    fifo=publisher.fifo,
                    content_based_deduplication=bool(publisher.content_based_deduplication),
                    max_message_bytes=MAX_MESSAGE_BYTES,
                )
            )
        except PublishError as error:
            refused.append({"index": index, "code": error.code, "message": error.sqs_message})
    return entries, refused


def _publish_response(results: list[str | BaseException], *, batch: bool) -> Response:
    outcomes: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, str):
            outcomes.append({"message_id": result})
        elif isinstance(result, PublishError):
            error = {"code": result.code, "message": result.sqs_message, "sender_fault": result.sender_fault}
            outcomes.append({"error": error})
        elif isinstance(result, ClosedError):
            outcomes.append({"error": {"code": "Closed", "message": str(result), "sender_fault": False}})
        else:
            raise result
    failed = [outcome["error"] for outcome in outcomes if "error" in outcome]
    if not failed:
        status = 200
    elif len(failed) < len(outcomes):
        status = 207
    elif all(error["sender_fault"] for error in failed):
        status = _PROBLEM_INVALID
    else:
        status = 503 if all(error["code"] == "Closed" for error in failed) else 502
    if not batch:
        return JSONResponse(outcomes[0], status_code=status)
    summary = {"published": len(outcomes) - len(failed), "failed": len(failed), "results": outcomes}
    return JSONResponse(summary, status_code=status)
