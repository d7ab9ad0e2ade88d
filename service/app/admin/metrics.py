"""`GET /metrics`: the Prometheus text exposition of the service's metrics, open like the probes (scrapers)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import RouteGroup, text_response
from service.app.admin.protocol import AdminService

MetricsRenderer = Callable[[], tuple[bytes, str]]
"""Renders the metrics as (body, content type)."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_group(service: AdminService, guard: BearerGuard, *, render: MetricsRenderer | None) -> RouteGroup:
    """The metrics route; without a renderer (telemetry off) it answers an empty exposition."""

    async def metrics(request: Request) -> Response:
        body, content_type = render() if render is not None else (b"", CONTENT_TYPE)
        return Response(body, media_type=content_type)

    operation = {
        "summary": "Metrics in the Prometheus text format (empty when telemetry is off).",
        "responses": {"200": text_response("The metrics.")},
    }
    return RouteGroup([Route("/metrics", metrics, methods=["GET"])], {"/metrics": {"get": operation}})
