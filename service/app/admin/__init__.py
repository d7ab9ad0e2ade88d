"""The admin API: a Starlette app over the running service."""

from service.app.admin.routes import AdminService, create_app

__all__ = ["AdminService", "create_app"]
