"""The probes: `/healthz` (liveness) and `/readyz` (readiness), and the liveness verdict `/status` shares."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import RouteGroup, json_response
from service.app.admin.protocol import AdminService

if TYPE_CHECKING:
    from service.consumer.server import Server
    from service.idempotency import Idempotent

# /healthz fails when no receive attempt completed for 3 long polls plus this margin, which covers the
# receive backoff (at most 30 s) and an HTTP read timeout (60 s), so a slow or unreachable SQS never fails it.
LIVENESS_MARGIN_S = 90.0


def receive_stall_limit_s(wait_time_seconds: int) -> float:
    """How long the receive loop may go without completing a receive attempt before /healthz fails."""
    return 3 * wait_time_seconds + LIVENESS_MARGIN_S


class Liveness:
    """Decides /healthz. A receive loop that waits for capacity (every handler busy) or is paused is not stuck."""

    def __init__(self, service: AdminService, stall_limit_s: float | None = None) -> None:
        self._service = service
        wait_s = service.settings.wait_time_seconds
        self._stall_limit_s = receive_stall_limit_s(wait_s) if stall_limit_s is None else stall_limit_s
        self._busy_at: dict[str, float] = {}  # by queue: when its receive loop last waited on purpose

    def problem(self) -> str | None:
        """Why the service is not alive, or None (for several queues: which queue, and why)."""
        consumers = self._service.consumers
        for name, consumer in consumers.items():
            problem = self._problem(name, consumer.server, consumer.operations.resumed_at)
            if problem is not None:
                return problem if len(consumers) == 1 else f"queue {name}: {problem}"
        return None

    def _problem(self, name: str, server: Server, resumed_at: float) -> str | None:
        health = server.health
        if health.stopped and not health.draining:  # a requested shutdown always drains first
            return "the message pipeline stopped by itself"
        if health.stopped or health.draining:
            return None
        now = time.monotonic()
        # Paused on purpose (/pause), or every handler busy: the receive loop waits, it is not stuck.
        if server.paused or server.in_flight >= server.processor.capacity:
            self._busy_at[name] = now
            return None
        last = max(health.last_receive_attempt_at or health.started_at, self._busy_at.get(name, 0.0), resumed_at)
        if now - last > self._stall_limit_s:
            return f"no receive attempt completed for {now - last:.0f} s"
        return None


def not_ready_reason(service: AdminService) -> str | None:
    """Why the service should get no traffic, or None when it is ready: every queue's pipeline must be (for
    several queues, the first that is not is named)."""
    if service.draining:
        return "draining"
    consumers = service.consumers
    for name, consumer in consumers.items():
        reason = server_not_ready(consumer.server, consumer.idempotency)
        if reason is not None:
            return reason if len(consumers) == 1 else f"queue {name}: {reason}"
    return None


def server_not_ready(server: Server, guard: Idempotent | None = None) -> str | None:
    """Why one queue's pipeline is not ready, or None."""
    if not server.alive:
        return "the message pipeline is not running"
    problem = None if guard is None else guard.problem()  # the idempotency store is down: nothing can be handled
    return problem or server.health.not_ready_reason()


def _verdict(word: str, value: bool) -> dict[str, Any]:
    """The schema of a probe's answer: `{word: value}`, with a `reason` when false."""
    properties: dict[str, Any] = {word: {"const": value}}
    if not value:
        properties["reason"] = {"type": "string"}
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


def _probe_doc(summary: str, word: str) -> dict[str, Any]:
    responses = {
        "200": json_response("Yes.", _verdict(word, True)),
        "503": json_response("No, and why.", _verdict(word, False)),
    }
    return {"get": {"summary": summary, "responses": responses}}


def probes_group(service: AdminService, guard: BearerGuard, *, liveness: Liveness) -> RouteGroup:
    """`GET /healthz` and `GET /readyz`, always open (the kubelet has no token)."""

    async def healthz(request: Request) -> Response:
        problem = liveness.problem()
        if problem is not None:
            return JSONResponse({"alive": False, "reason": problem}, status_code=503)
        return JSONResponse({"alive": True})

    async def readyz(request: Request) -> Response:
        reason = not_ready_reason(service)
        if reason is not None:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    paths = {
        "/healthz": _probe_doc("Liveness: the event loop and the receive loop are alive.", "alive"),
        "/readyz": _probe_doc(
            "Readiness: the queue answered (a check at start), receives succeed and the service is not draining.",
            "ready",
        ),
    }
    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    return RouteGroup(routes, paths)
