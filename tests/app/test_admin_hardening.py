"""The admin API's shared guards, on a real Server and Publisher (moto): every error JSON, nothing changed by a refusal.

Host allow-list (DNS rebinding), cross-origin requests as browsers mark them, content types of state changes,
bodies nested deeply or holding NaN, Unicode digits in query integers, the bearer scheme in any case, and the JSON
answer with an error id for anything an endpoint did not expect.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.app.admin import AdminService, BearerGuard, RouteGroup, create_app
from service.app.admin.bodies import MAX_JSON_DEPTH
from service.app.admin.hosts import HostAllowList
from service.app.config import GUARDED_ROUTES, Settings, setting_help
from service.app.listener import warn_if_open
from service.app.runtime import Runtime
from tests.support.runtime import started
from tests.support.sqs import QueueFactory

TOKEN = "hardening-t0ken-0123"
BASE = Settings(admin_port=0, wait_time_seconds=1, deletion_interval_s=0.5, drain_timeout_s=2)
JSON_TYPE = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def service(make_queue: QueueFactory) -> AsyncIterator[Runtime]:
    """A Runtime whose Server and Publisher run on a fresh queue, without its HTTP server or signals."""
    async with started(dataclasses.replace(BASE, queue_url=await make_queue(max_receive_count=2))) as running:
        yield running


def client_for(runtime: Runtime, *, host: str = "localhost", groups: Any = ()) -> httpx.AsyncClient:
    app = create_app(runtime, groups=groups)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


def assert_json_error(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert text in response.json()["error"], response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[::2]:80", ""])
async def test_a_host_not_allowed_is_refused_on_every_route_and_never_reflected(service: Runtime, host: str) -> None:
    async with client_for(service) as client:
        for method, path in [("GET", "/status"), ("GET", "/healthz"), ("GET", "/console/"), ("POST", "/pause")]:
            response = await client.request(method, path, headers={"Host": host})
            assert_json_error(response, 421, "MQ_ADMIN_ALLOWED_HOSTS")
            assert "location" not in response.headers
            assert not host or host not in response.text
        assert not service.server.paused


async def test_allowed_hosts_answer_and_no_redirect_is_built_from_the_host(service: Runtime) -> None:
    async with client_for(service) as client:
        for host in ["localhost", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST."]:
            assert (await client.get("/openapi.json", headers={"Host": host})).status_code == 200, host
        slash = await client.get("/console/")
        home = await client.get("/")
    assert slash.status_code == 404  # no trailing-slash redirect: it would be built from the Host header
    assert (home.status_code, home.headers["location"]) == (307, "/console")


def test_the_allow_list_takes_names_addresses_subdomains_and_any() -> None:
    allowed = HostAllowList(["mq-service.orders.svc", "10.1.2.3", ".internal.example", "::1"])
    assert allowed.allows("mq-service.orders.svc:8080")
    assert allowed.allows("10.1.2.3")
    assert allowed.allows("pod.internal.example:80")
    assert allowed.allows("[::1]:8080")
    assert not allowed.allows("internal.example.evil.example")
    assert not allowed.allows("10.1.2.30")
    assert HostAllowList(["*"]).allows("anything.example")


async def test_the_allowed_hosts_setting_replaces_the_defaults(service: Runtime) -> None:
    service.settings = dataclasses.replace(service.settings, admin_allowed_hosts=("mq.orders.svc",))
    async with client_for(service, host="mq.orders.svc") as client:
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/openapi.json", headers={"Host": "localhost"})).status_code == 421


CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of the same host is the same site, not the same origin
    {"Origin": "http://127.0.0.1:9999"},
    {"Origin": "null"},
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=str)
async def test_cross_origin_requests_change_and_read_nothing(service: Runtime, headers: dict[str, str]) -> None:
    async with client_for(service) as client:
        paused = await client.post("/pause", headers=headers)
        limits = await client.put("/limits", json={"max_messages_per_s": 1}, headers=headers)
        published = await client.post("/publish", json={"body": "x"}, headers=headers)
        status = await client.get("/status", headers=headers)
        peeked = await client.get("/dlq/messages", headers=headers)
        drained = await client.post("/drain", headers=headers)
    for response in (paused, limits, published, status, peeked, drained):
        assert_json_error(response, 403, "refused")
    assert (service.server.paused, service.server.rate_limit, service.draining) == (False, None, False)
    assert service.publisher.stats()["published"] == 0


async def test_same_origin_requests_from_the_console_pass(service: Runtime) -> None:
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    async with client_for(service) as client:
        assert (await client.post("/pause", headers=same)).json()["paused"] is True
        assert (await client.post("/resume", headers={"Sec-Fetch-Site": "none"})).json()["paused"] is False
        # Open routes stay reachable from a link on another site.
        assert (await client.get("/console", headers={"Sec-Fetch-Site": "cross-site"})).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
async def test_a_state_change_with_a_body_must_be_json(service: Runtime, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with client_for(service) as client:
        for method, path in [("POST", "/pause"), ("PUT", "/limits"), ("POST", "/publish"), ("POST", "/dlq/redrive")]:
            body = b'{"max_messages_per_s": 1, "body": "x"}'
            response = await client.request(method, path, content=body, headers=headers)
            assert_json_error(response, 415, "application/json")
        # Without a body and a content type (`curl -X POST .../pause`), a state change needs none.
        assert (await client.post("/pause")).json()["paused"] is True
    assert service.server.rate_limit is None
    assert service.publisher.stats()["published"] == 0


async def test_get_and_head_change_nothing(service: Runtime) -> None:
    async with client_for(service) as client:
        for method in ("GET", "HEAD"):
            for path in ("/drain", "/pause", "/resume", "/publish"):
                response = await client.request(method, path)
                assert response.status_code == 405, (method, path)
    assert (service.draining, service.server.paused) == (False, False)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/publish"), ("POST", "/pause"), ("PUT", "/limits"), ("POST", "/dlq/redrive")]
)
async def test_deep_nesting_is_a_400_however_deep(service: Runtime, method: str, path: str) -> None:
    async with client_for(service) as client:
        for depth in (MAX_JSON_DEPTH + 1, 5000, 30_000):  # 30,000: within every route's size limit
            body = b'{"body": ' + deep(depth) + b"}"
            response = await client.request(method, path, content=body, headers=JSON_TYPE)
            assert_json_error(response, 400, f"more than {MAX_JSON_DEPTH} levels deep")
        within = {"body": {"a": [[["ok"]]]}}
        if path == "/publish":
            assert (await client.post(path, json=within)).status_code == 200


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
async def test_nan_and_infinities_are_422_everywhere(service: Runtime, number: bytes) -> None:
    cases = [
        ("PUT", "/limits", b'{"max_messages_per_s": ' + number + b"}"),
        ("POST", "/publish", b'{"body": ' + number + b"}"),
        ("POST", "/dlq/redrive", b'{"max_messages_per_s": ' + number + b"}"),
        ("POST", "/pause", b'{"reason": ' + number + b"}"),
    ]
    async with client_for(service) as client:
        for method, path, body in cases:
            response = await client.request(method, path, content=body, headers=JSON_TYPE)
            assert_json_error(response, 422, "no NaN or Infinity")
    assert (service.server.rate_limit, service.server.paused) == (None, False)


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A3", "%EF%BC%95", "1%E2%80%8B", "-1", "0x5", " 5"])
async def test_query_integers_are_ascii_digits_only(service: Runtime, limit: str) -> None:
    async with client_for(service) as client:
        response = await client.get(f"/dlq/messages?limit={limit}")
    assert_json_error(response, 422, "in ASCII digits")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(service: Runtime, scheme: str) -> None:
    service.settings = dataclasses.replace(service.settings, admin_token=TOKEN)
    async with client_for(service) as client:
        assert (await client.get("/status", headers={"Authorization": f"{scheme} {TOKEN}"})).status_code == 200
        refused = await client.get("/status", headers={"Authorization": f"{scheme} {TOKEN}x"})
        assert_json_error(refused, 401, "Authorization")


async def test_an_unexpected_error_is_a_json_500_with_an_id_logged_in_one_line(
    service: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # A fake endpoint: no real route fails this way on purpose, which is what the shield is for.
    def failing_group(admin: AdminService, guard: BearerGuard) -> RouteGroup:
        async def fail(request: Request) -> Response:
            raise LookupError("a bug")

        operation = {"summary": "Fails.", "responses": {}}
        return RouteGroup([Route("/extra/fail", fail, methods=["GET"])], {"/extra/fail": {"get": operation}})

    caplog.set_level(logging.DEBUG, logger="service.admin")
    async with client_for(service, groups=[failing_group]) as client:
        response = await client.get("/extra/fail")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error.startswith("unexpected error (id ")
    error_id = error.split("(id ")[1].split(")")[0]
    (line,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert error_id in line.getMessage()
    assert "LookupError('a bug')" in line.getMessage()
    assert line.exc_info is None  # the traceback goes to DEBUG only
    (traced,) = [record for record in caplog.records if record.levelno == logging.DEBUG and record.exc_info]
    assert error_id in traced.getMessage()


async def test_the_token_help_names_exactly_the_guarded_routes(service: Runtime) -> None:
    service.settings = dataclasses.replace(service.settings, admin_token=TOKEN)
    async with client_for(service) as client:
        document = (await client.get("/openapi.json")).json()
    guarded = {
        path for path, item in document["paths"].items() if any("security" in operation for operation in item.values())
    }
    assert set(GUARDED_ROUTES.split()) == guarded
    assert GUARDED_ROUTES in setting_help("admin_token").replace("\n", " ")


@pytest.mark.parametrize(
    ("host", "token_set", "warned"),
    [("0.0.0.0", False, True), ("10.1.2.3", False, True), ("0.0.0.0", True, False), ("127.0.0.1", False, False)],
)
def test_listening_beyond_loopback_without_a_token_is_warned_about(
    caplog: pytest.LogCaptureFixture, host: str, *, token_set: bool, warned: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="service.runtime")
    warn_if_open(host, token_set=token_set)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert bool(warnings) is warned
    assert all(host in warning and "without MQ_ADMIN_TOKEN" in warning for warning in warnings)
