"""The operator's console: one static page (HTML, CSS, a small script) served by the admin app; `/` leads there.

The page is open (it holds no data); the API calls it makes carry the bearer token the operator types in.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import text_response

# Each file's media type (UTF-8 text); the page is also served at /console itself.
FILES = {"index.html": "text/html", "console.css": "text/css", "console.js": "text/javascript"}
PAGE = "index.html"
# Nothing from outside the pod: the page may load and call only its own origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def routes(service: object, guard: BearerGuard) -> list[BaseRoute]:
    """`GET /console` and one route per file, `GET /` redirecting there; open, like the probes."""
    folder = resources.files("service.app.admin") / "console"
    served = [_file_route(f"/console/{name}", (folder / name).read_bytes(), FILES[name]) for name in FILES]

    async def home(request: Request) -> Response:
        return RedirectResponse("/console", status_code=307)

    page = _file_route("/console", (folder / PAGE).read_bytes(), FILES[PAGE])
    return [Route("/", home, methods=["GET"]), page, *served]


def _file_route(path: str, content: bytes, media_type: str) -> Route:
    async def serve(request: Request) -> Response:
        return Response(content, media_type=f"{media_type}; charset=utf-8", headers=HEADERS)

    return Route(path, serve, methods=["GET"])


def path_items(guard: BearerGuard) -> dict[str, Any]:
    """The OpenAPI path items of these routes (open: the page asks for the token itself)."""
    redirect = {
        "description": "To /console.",
        "headers": {"Location": {"schema": {"type": "string", "const": "/console"}}},
    }
    items: dict[str, Any] = {
        "/": {"get": {"summary": "Redirects to /console.", "responses": {"307": redirect}}},
        "/console": {"get": _file_operation("The operator's console.", PAGE)},
    }
    for name in FILES:
        items[f"/console/{name}"] = {"get": _file_operation(f"The console's {name}.", name)}
    return items


def _file_operation(summary: str, name: str) -> dict[str, Any]:
    return {"summary": summary, "responses": {"200": text_response(f"{name} (UTF-8).", FILES[name])}}
