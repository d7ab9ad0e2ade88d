"""`POST /drain`: stop the service gracefully, answering when done (the chart's preStop hook sends it).

POST only: a state change never comes from GET or HEAD (a link checker, a monitor, an `<img>` on another site).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import RouteGroup, json_response
from service.app.admin.protocol import AdminService

_SUMMARY = {
    "type": "object",
    "required": ["server", "publisher"],
    "properties": {
        "server": {"type": "object", "description": "handled, failed, deleted, released, cancelled, timed_out, ..."},
        "publisher": {"type": "object", "description": "published, failed, retried, buffered, ..."},
    },
}


def drain_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """The drain route; the summary is the same for every caller, however many call and when."""

    async def drain(request: Request) -> Response:
        return JSONResponse(await service.drain())

    def operation() -> dict[str, Any]:
        summary = "Stop receiving, finish or hand back in-flight messages, flush; answers when done."
        responses = {"200": json_response("The shutdown summary of the pipeline and the publisher.", _SUMMARY)}
        return guard.document({"summary": summary, "responses": responses})

    route = Route("/drain", guard(drain), methods=["POST"])
    return RouteGroup([route], {"/drain": {"post": operation()}})
