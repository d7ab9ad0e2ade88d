"""The admin app on a real Server and Publisher (moto): request validation, auth, probes, OpenAPI document."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from handlers.example import router
from service.app.admin import create_app
from service.app.admin.publish import publish_response
from service.app.admin.publish_schema import QueueKind, request_schema
from service.app.config import Settings
from service.app.runtime import Runtime
from service.consumer.health import READY_MAX_RECEIVE_ERRORS
from service.errors import PublishError
from tests.support.runtime import started
from tests.support.sqs import QueueFactory, drain_queue, queue_counts, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

TOKEN = "t0ken-for-the-tests"
BASE = Settings(admin_port=0, wait_time_seconds=1, deletion_interval_s=0.5, drain_timeout_s=2, publish_max_batch=3)


@pytest.fixture
async def service(make_queue: QueueFactory) -> AsyncIterator[Runtime]:
    """A Runtime whose Server and Publisher run on a fresh queue, without its HTTP server or signals."""
    async with started(dataclasses.replace(BASE, queue_url=await make_queue())) as running:
        yield running


def client_for(runtime: Runtime, **settings: Any) -> httpx.AsyncClient:
    runtime.settings = dataclasses.replace(runtime.settings, **settings)
    transport = httpx.ASGITransport(app=create_app(runtime))
    return httpx.AsyncClient(transport=transport, base_url="http://localhost")


MIB = 1_048_576
BAD_REQUESTS: list[tuple[str, bytes | None, Any, int, str]] = [
    ("not JSON", b"{body:", None, 400, "not valid JSON"),
    ("NaN", b'{"body": NaN}', None, 422, "no NaN or Infinity"),
    ("empty body", b"", None, 400, "the request has no body"),
    ("a list", None, [], 422, "must be an object: one message"),
    ("no body", None, {}, 422, "'body' is required"),
    ("unknown field", None, {"body": "x", "colour": "red"}, 422, "unknown field 'colour'"),
    ("null body", None, {"body": None}, 422, '"path":"$.body","message":"must be a string or an object'),
    ("delay too long", None, {"body": "x", "delay_s": 901}, 422, "must be from 0 to 900"),
    ("delay as text", None, {"body": "x", "delay_s": "5"}, 422, "must be an integer, not a string"),
    ("empty route", None, {"body": "x", "route": ""}, 422, '"path":"$.route","message":"must not be empty"'),
    ("11 attributes", None, {"body": "x", "message_attributes": {f"a{i}": "v" for i in range(11)}}, 422, "at most 10"),
    ("attribute number", None, {"body": "x", "message_attributes": {"n": 5}}, 422, "$.message_attributes.n"),
    ("empty batch", None, {"messages": []}, 422, '"message":"at least 1 item"'),
    ("batch too large", None, {"messages": [{"body": "x"}] * 4}, 422, "at most 3 items, not 4"),
    ("bad batch item", None, {"messages": [{"body": "x"}, {"body": "y", "x": 1}]}, 422, "$.messages[1]"),
    ("reserved attribute name", None, {"body": "x", "message_attributes": {"AWS.x": "v"}}, 422, "'AWS.x' is not"),
    ("refused character", None, {"body": "a\u0000b"}, 422, "U+0000 at index 1"),
    ("FIFO id on a standard queue", None, {"body": "x", "deduplication_id": "d"}, 422, "unknown field 'dedup"),
    ("FIFO group on a standard queue", None, {"body": "x", "group_id": "g"}, 422, "unknown field 'group_id'"),
    ("oversized message in a batch", None, {"messages": [{"body": "ok"}, {"body": "x" * (MIB + 1)}]}, 422, 'index":1'),
    ("request over 10 MiB", b'{"body": "' + b"x" * (10 * MIB) + b'"}', None, 413, "larger than"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
async def test_bad_publish_requests_are_refused_and_nothing_is_sent(
    service: Runtime, sqs: SQSClient, case: tuple[str, bytes | None, Any, int, str]
) -> None:
    _, raw, data, status, text = case
    async with client_for(service) as client:
        if raw is not None:
            response = await client.post("/publish", content=raw, headers={"Content-Type": "application/json"})
        else:
            response = await client.post("/publish", json=data)
    assert response.status_code == status, response.text
    assert text in response.text
    assert await queue_counts(sqs, service.queue_url) == (0, 0)
    assert service.publisher.stats()["published"] == 0


async def test_publish_one_and_a_batch(make_queue: QueueFactory, sqs: SQSClient) -> None:
    # Published to a queue nobody consumes, to look at the messages there.
    settings = dataclasses.replace(BASE, queue_url=await make_queue(), publish_queue_url=await make_queue())
    service = Runtime(settings, router, handle_signals=False)
    await service.start()
    try:
        async with client_for(service) as client:
            one = await client.post(
                "/publish", json={"body": {"n": 1}, "route": "hello", "message_attributes": {"k": "v"}}
            )
            batch = await client.post("/publish", json={"messages": [{"body": "a", "delay_s": 0}, {"body": "b"}]})
    finally:
        await service.drain()
    assert one.status_code == 200, one.text
    assert batch.status_code == 200, batch.text
    assert batch.json()["published"] == 2
    ids = {one.json()["message_id"]} | {result["message_id"] for result in batch.json()["results"]}
    messages = await drain_queue(sqs, service.publish_queue_url)
    assert {m["MessageId"] for m in messages} == ids
    first = next(m for m in messages if m["MessageId"] == one.json()["message_id"])
    assert first["Body"] == '{"n":1}'
    assert first["MessageAttributes"]["route"]["StringValue"] == "hello"
    assert first["MessageAttributes"]["k"] == {"DataType": "String", "StringValue": "v"}


@pytest.mark.parametrize(
    ("results", "batch", "status"),
    [
        (["id-1"], False, 200),
        (["id-1", PublishError("InternalError", "boom", sender_fault=False)], True, 207),
        ([PublishError("InvalidParameterValue", "no", sender_fault=True)], False, 422),
        ([PublishError("InternalError", "boom", sender_fault=False)], False, 502),
    ],
)
def test_publish_status_codes(results: list[str | BaseException], batch: bool, status: int) -> None:
    # SQS cannot be made to fail one entry of a valid batch on demand, so the mapping is checked directly.
    assert publish_response(results, batch=batch).status_code == status


@pytest.mark.parametrize(("method", "path"), [("POST", "/drain"), ("POST", "/publish"), ("GET", "/status")])
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
async def test_the_token_is_required(service: Runtime, method: str, path: str, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with client_for(service, admin_token=TOKEN) as client:
        response = await client.request(method, path, headers=headers, json={"body": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert not service.draining


async def test_with_the_token_protected_routes_answer_and_probes_stay_open(service: Runtime) -> None:
    await until(lambda: service.server.health.last_receive_ok_at is not None)
    async with client_for(service, admin_token=TOKEN) as client:
        status = await client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
        open_routes = [await client.get(path) for path in ("/healthz", "/readyz", "/openapi.json")]
    assert status.status_code == 200
    assert status.json()["settings"]["admin_token_set"] is True
    assert TOKEN not in status.text
    assert [r.status_code for r in open_routes] == [200, 200, 200]


async def test_status_reports_pipeline_publisher_and_settings(service: Runtime) -> None:
    async with client_for(service) as client:
        data = (await client.get("/status")).json()
    assert data["alive"] is True
    assert data["draining"] is False
    assert {"received", "handled", "deleted", "consecutive_receive_errors"} <= set(data["pipeline"])
    assert {"published", "failed", "buffered"} <= set(data["publisher"])
    assert data["settings"]["queue_url"] == service.queue_url


async def test_not_ready_while_receives_fail_but_alive(make_queue: QueueFactory) -> None:
    # A queue that does not exist: every receive fails, as when SQS is down for this consumer.
    url = (await make_queue()).rsplit("/", 1)[0] + "/never-created"
    runtime = Runtime(dataclasses.replace(BASE, queue_url=url), router, handle_signals=False)
    await runtime.start()
    try:
        async with client_for(runtime) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            await until(lambda: runtime.server.health.last_receive_error is not None)
            reason = (await client.get("/readyz")).json()["reason"]
            assert f"queue {url} does not exist (AWS.SimpleQueueService.NonExistentQueue)" in reason
            await until(lambda: runtime.server.health.consecutive_receive_errors >= READY_MAX_RECEIVE_ERRORS)
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
    finally:
        await runtime.drain()


async def test_openapi_document_describes_every_route(service: Runtime) -> None:
    async with client_for(service, admin_token=TOKEN) as client:
        document = (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert {"/healthz", "/readyz", "/drain", "/publish", "/status", "/openapi.json"} <= set(document["paths"])
    body_schema = document["paths"]["/publish"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == request_schema(QueueKind(fifo=False), 3)
    assert document["paths"]["/status"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


async def test_publish_while_draining_is_503(service: Runtime, sqs: SQSClient) -> None:
    await service.drain()
    async with client_for(service) as client:
        response = await client.post("/publish", json={"body": "late"})
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
        status = (await client.get("/status")).json()
    assert response.status_code == 503
    assert response.json() == {"error": "the service is draining: it publishes nothing more"}
    assert ready.json() == {"ready": False, "reason": "draining"}
    assert alive.status_code == 200
    # One word, one meaning: /status says what /healthz says, and separately that the pipeline stopped.
    assert (status["alive"], status["pipeline_running"], status["ready"]) == (True, False, False)
    assert status["not_ready_reason"] == "draining"
    assert await queue_counts(sqs, service.queue_url) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [("GET", "/nowhere", 404, None), ("DELETE", "/status", 405, "GET"), ("GET", "/publish", 405, "POST")],
)
async def test_unknown_routes_and_methods_answer_json(
    service: Runtime, method: str, path: str, status: int, allow: str | None
) -> None:
    async with client_for(service) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error"}
    if allow is not None:
        assert allow in response.headers["allow"]


async def test_liveness_fails_when_no_receive_attempt_completes(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_queue()
    with socket.socket() as black_hole:  # accepts connections, never answers: every receive hangs
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen()
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{black_hole.getsockname()[1]}")
        runtime = Runtime(dataclasses.replace(BASE, queue_url=url), router, handle_signals=False)
        await runtime.start()
        try:
            # The same hanging receive, judged against a limit it has not reached (however long the start took on
            # a busy machine) and against one second: only the stall makes the difference.
            patient = create_app(runtime, receive_stall_s=60.0)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=patient), base_url="http://localhost"
            ) as client:
                assert (await client.get("/healthz")).status_code == 200
            app = create_app(runtime, receive_stall_s=1.0)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
                started = time.monotonic()
                while (alive := await client.get("/healthz")).status_code == 200:
                    assert time.monotonic() - started < 30
                    await asyncio.sleep(0.1)
                assert alive.status_code == 503
                assert alive.json()["reason"].startswith("no receive attempt completed for")
        finally:
            await runtime.drain()
