"""The admin API: a Starlette app over the running service, one module per group of routes."""

from service.app.admin.app import GroupFactory, create_app
from service.app.admin.auth import BearerGuard
from service.app.admin.openapi import RouteGroup
from service.app.admin.protocol import AdminService

__all__ = ["AdminService", "BearerGuard", "GroupFactory", "RouteGroup", "create_app"]
