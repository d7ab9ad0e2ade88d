"""The operator's console: one static page (HTML, CSS, a small script) served by the admin app; `/` leads there.

The page is open (it holds no data); the API calls it makes carry the bearer token the operator types in.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from service.app.admin.actions import Guard, json_content, operation

FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
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


def routes(service: object, guard: Guard) -> list[BaseRoute]:
    """`GET /console` and its files, `GET /` redirecting there; open, like the probes."""
    folder = resources.files("service.app.admin") / "console"
    contents = {name: (folder / name).read_bytes() for name in FILES}

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in contents:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(contents[name], media_type=FILES[name], headers=HEADERS)

    async def home(request: Request) -> Response:
        return RedirectResponse("/console", status_code=307)

    return [
        Route("/", home, methods=["GET"]),
        Route("/console", page, methods=["GET"]),
        Route("/console/{name}", page, methods=["GET"]),
    ]


def path_items(*, protected: bool) -> dict[str, Any]:
    """The OpenAPI path items of these routes (open: the page asks for the token itself)."""
    html = {"description": "The console page.", "content": {"text/html": {"schema": {"type": "string"}}}}
    static = {"description": "A file of the console.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/": {"get": operation("Redirects to /console.", {"307": {"description": "To /console."}}, protected=False)},
        "/console": {"get": operation("The operator's console.", {"200": html}, protected=False)},
        "/console/{name}": {
            "get": {
                **operation(
                    "The console's stylesheet and script.",
                    {"200": static, "404": json_content({"type": "string"}, "No such file.")},
                    protected=False,
                ),
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"enum": list(FILES)}}],
            }
        },
    }
