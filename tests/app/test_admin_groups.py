"""Route groups plug into the admin app: served, guarded and documented like the built-in ones."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.example import router
from service.app.admin import AdminService, BearerGuard, RouteGroup, create_app
from service.app.admin.openapi import json_response
from service.app.config import Settings
from service.app.runtime import Runtime

TOKEN = "gr0up-token"
# Never contacted: the app is built and called without starting the pipeline.
SETTINGS = Settings(queue_url="http://127.0.0.1:9/000000000000/q", admin_token=TOKEN)


def queues_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    async def queues(request: Request) -> Response:
        return JSONResponse({"queues": [service.server.queue_url]})

    operation = {"summary": "The queues.", "responses": {"200": json_response("The queues.", {"type": "object"})}}
    route = Route("/extra/queues", guard(queues), methods=["GET"])
    return RouteGroup([route], {"/extra/queues": {"get": guard.document(operation)}})


def clashing_group(service: AdminService, guard: BearerGuard) -> RouteGroup:
    return RouteGroup([], {"/status": {"get": {"responses": {}}}})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


async def test_an_added_group_is_served_guarded_and_documented() -> None:
    runtime = Runtime(SETTINGS, router, handle_signals=False)
    async with client(create_app(runtime, groups=[queues_group])) as admin:
        refused = await admin.get("/extra/queues")
        answered = await admin.get("/extra/queues", headers={"Authorization": f"Bearer {TOKEN}"})
        document = (await admin.get("/openapi.json")).json()
    assert refused.status_code == 401
    assert answered.json() == {"queues": [SETTINGS.queue_url]}
    operation = document["paths"]["/extra/queues"]["get"]
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]) == {"200", "401", "403", "421"}  # 403, 421: the shared guards
    assert "/status" in document["paths"]


def test_two_groups_cannot_describe_one_path() -> None:
    runtime = Runtime(SETTINGS, router, handle_signals=False)
    with pytest.raises(ValueError, match="two route groups describe /status"):
        create_app(runtime, groups=[clashing_group])
