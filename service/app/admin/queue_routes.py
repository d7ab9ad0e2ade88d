"""Every operator route per queue: `/queues/{name}/pause`, `/resume`, `/limits`, `/errors`, `/dlq/messages`,
`/dlq/redrive`, and `GET /queues/{name}` (the queue's depths).

Each is the route of the same name acting on one queue: the operator and dead-letter routes are built once per
queue (over its Server and Operations) and a request is sent to its queue's. The routes without a queue name act
on the first queue (the only one, in a one-queue service).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.app.admin import dlq, operator
from service.app.admin.auth import BearerGuard
from service.app.admin.errors import error_doc, error_response
from service.app.admin.openapi import RouteGroup
from service.app.admin.protocol import AdminService, Endpoint

# The path under /queues/{name} -> the path of the route it is per queue ("" is the queue's depths).
PER_QUEUE = {"": "/queues", "/pause": "/pause", "/resume": "/resume", "/limits": "/limits", "/errors": "/errors"}
PER_QUEUE_DLQ = {"/dlq/messages": "/dlq/messages", "/dlq/redrive": "/dlq/redrive"}


def queue_routes_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """The per-queue routes, behind `guard` (the routes they dispatch to are built without one: checked once)."""
    unguarded = BearerGuard(None)
    by_queue: dict[str, dict[str, BaseRoute]] = {}
    for name, consumer in service.consumers.items():
        built = [*operator.routes(consumer, unguarded), *dlq.routes(consumer, unguarded)]
        by_queue[name] = {route.path: route for route in built if isinstance(route, Route)}
    routes: list[BaseRoute] = []
    for suffix, target in {**PER_QUEUE, **PER_QUEUE_DLQ}.items():
        first = next(iter(by_queue.values()))[target]
        assert isinstance(first, Route)
        methods = sorted((first.methods or set()) - {"HEAD"})
        routes.append(Route(f"/queues/{{name}}{suffix}", guard(_dispatch(by_queue, target)), methods=methods))
    return RouteGroup(routes, _path_items(guard, list(service.consumers)), guard.components())


def _dispatch(by_queue: dict[str, dict[str, BaseRoute]], target: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        routes = by_queue.get(name)
        if routes is None:
            return error_response(404, f"no queue named {name!r}; the queues are {', '.join(by_queue)}")
        route = routes[target]
        assert isinstance(route, Route)
        answer: Response = await route.endpoint(request)
        return answer

    return endpoint


def _path_items(guard: BearerGuard, names: list[str]) -> dict[str, Any]:
    """Each route's own documentation, with the queue's name as a path parameter and a 404 for an unknown one."""
    parameter = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The queue's name (from the queue table; in a one-queue service, from its URL).",
        "schema": {"type": "string", "enum": names},
    }
    own = {**operator.path_items(guard), **dlq.path_items(guard)}
    items: dict[str, Any] = {}
    for suffix, target in {**PER_QUEUE, **PER_QUEUE_DLQ}.items():
        item = copy.deepcopy(own[target])
        for method in item.values():
            method["summary"] = f"{method['summary']} (for one queue)"
            method["parameters"] = [parameter, *method.get("parameters", [])]
            responses = method["responses"]
            if "404" in responses:
                responses["404"]["description"] += " Or no queue has this name."
            else:
                responses["404"] = error_doc("No queue has this name.")
        items[f"/queues/{{name}}{suffix}"] = item
    return items
