"""OpenAPI pieces: route groups with their path items, response objects, and the document built from the groups.

Every route group (probes, drain, publish, status, metrics, and any added later) describes its own paths;
`/openapi.json` is the union of them, so a route cannot be served without being documented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/Error"}
_STATE_CHANGING = ("post", "put", "delete", "patch")
# What the shared guards answer on any route: the Host allow-list everywhere (hosts.py), the content type on a
# state change (auth.py).
_MISDIRECTED = "The Host header names no host this admin API answers to (MQ_ADMIN_ALLOWED_HOSTS)."
_NOT_JSON = "The request has a body that is not Content-Type: application/json."


@dataclass(frozen=True)
class RouteGroup:
    """Admin routes with their OpenAPI path items (by path) and the components (by kind, then name) they use."""

    routes: Sequence[BaseRoute] = ()
    paths: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    components: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def ref(name: str) -> dict[str, Any]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A response object with a JSON body."""
    return {"description": description, "content": {JSON: {"schema": dict(schema)}}}


def text_response(description: str, media_type: str = "text/plain") -> dict[str, Any]:
    """A response object with a text body."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def document(groups: Sequence[RouteGroup]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin API, from every group's paths and components."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for group in groups:
        for path, item in group.paths.items():
            if path in paths:
                raise ValueError(f"two route groups describe {path}")
            paths[path] = {method: _with_guards(method, operation) for method, operation in item.items()}
        for kind, named in group.components.items():
            components.setdefault(kind, {}).update(named)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mq-service admin API", "version": "1"},
        "paths": paths,
        "components": components,
    }


def _with_guards(method: str, operation: Mapping[str, Any]) -> dict[str, Any]:
    """The operation with the answers of the guards every route passes through."""
    responses = dict(operation["responses"])
    responses.setdefault("421", json_response(_MISDIRECTED, _ERROR))
    if method in _STATE_CHANGING:
        responses.setdefault("415", json_response(_NOT_JSON, _ERROR))
    return {**operation, "responses": responses}


def openapi_group(groups: Sequence[RouteGroup]) -> RouteGroup:
    """`GET /openapi.json`: the document of `groups` and of this route itself."""
    operation = {
        "summary": "This document.",
        "responses": {"200": json_response("The OpenAPI 3.1 document.", {"type": "object"})},
    }
    own = RouteGroup(paths={"/openapi.json": {"get": operation}})
    body = document([*groups, own])

    async def openapi(request: Request) -> Response:
        return JSONResponse(body)

    return RouteGroup([Route("/openapi.json", openapi, methods=["GET"])], own.paths)
