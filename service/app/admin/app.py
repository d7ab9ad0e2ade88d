"""The admin app: route groups assembled into one Starlette app, with `/openapi.json` describing them all.

A route group is a function `(service, guard) -> RouteGroup`: its routes, their OpenAPI path items and the
components they use. `create_app(service, groups=[...])` plugs in more groups the same way as the built-in ones.

Every group shares the same guards, so a route added later gets them too: the Host allow-list and the JSON error
shield around the whole app, the guard (same-origin, token, JSON content) around each protected endpoint, and one
bounded body reader (bodies.py) for every body.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware

from service.app.admin import dlq, operator, pages
from service.app.admin.auth import BearerGuard
from service.app.admin.drain import drain_group
from service.app.admin.errors import EXCEPTION_HANDLERS, errors_group
from service.app.admin.hosts import HostAllowList, HostGuard, default_allowed_hosts
from service.app.admin.metrics import MetricsRenderer, metrics_group
from service.app.admin.openapi import RouteGroup, openapi_group
from service.app.admin.probes import Liveness, probes_group
from service.app.admin.protocol import AdminService
from service.app.admin.publish import publish_group, queue_publish_groups
from service.app.admin.queue_routes import queue_routes_group
from service.app.admin.shield import ErrorShield
from service.app.admin.status import status_group

GroupFactory = Callable[[AdminService, BearerGuard], RouteGroup]
"""Builds one route group for a service; the guard protects (and documents) the routes that need the token."""


def create_app(
    service: AdminService,
    *,
    metrics: MetricsRenderer | None = None,
    receive_stall_s: float | None = None,
    groups: Sequence[GroupFactory] = (),
) -> Starlette:
    """The admin app. `metrics` renders `GET /metrics` as (body, content type); `groups` adds route groups."""
    liveness = Liveness(service, receive_stall_s)
    factories: list[GroupFactory] = [
        partial(probes_group, liveness=liveness),
        drain_group,
        publish_group,
        queue_publish_groups,
        partial(status_group, liveness=liveness),
        partial(metrics_group, render=metrics),
        _operator_group,
        _dlq_group,
        queue_routes_group,
        _pages_group,
        *groups,
    ]
    guard = BearerGuard(service.settings.admin_token)
    built = [errors_group(), *(factory(service, guard) for factory in factories)]
    built.append(openapi_group(built))
    routes = [route for group in built for route in group.routes]
    settings = service.settings
    hosts = HostAllowList(settings.admin_allowed_hosts or default_allowed_hosts(settings.admin_host))
    middleware = [Middleware(ErrorShield), Middleware(HostGuard, allowed=hosts)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=dict(EXCEPTION_HANDLERS))
    # A redirect to add a trailing slash is built from the Host header: none, so no Host is ever reflected.
    app.router.redirect_slashes = False
    return app


def _operator_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """Pause, resume, limits, queues, errors."""
    return RouteGroup(operator.routes(service, guard), operator.path_items(guard), guard.components())


def _dlq_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """The dead-letter queue: peek and redrive."""
    return RouteGroup(dlq.routes(service, guard), dlq.path_items(guard), guard.components())


def _pages_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    """The console page and its files."""
    return RouteGroup(pages.routes(service, guard), pages.path_items(guard))
