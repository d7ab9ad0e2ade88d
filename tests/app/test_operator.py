"""The operator's routes end to end (the whole service on real uvicorn, against moto): pause and resume, the rate
limit, the last errors, the token on every new route, the OpenAPI document, the audit lines."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from service import Message
from service.telemetry import Telemetry
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import QueueFactory, eventually, queue_counts, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

TOKEN = "operator-t0ken-0123"
JSON_TYPE = {"Content-Type": "application/json"}
NEW_ROUTES = [
    ("POST", "/pause"),
    ("POST", "/resume"),
    ("GET", "/limits"),
    ("PUT", "/limits"),
    ("GET", "/queues"),
    ("GET", "/errors"),
    ("GET", "/dlq/messages"),
    ("GET", "/dlq/redrive"),
    ("POST", "/dlq/redrive"),
    ("DELETE", "/dlq/redrive"),
]


class Recorder:
    """Records when each message was handled; fails bodies that start with `fail`."""

    def __init__(self) -> None:
        self.handled: dict[str, float] = {}
        self.received: dict[str, float] = {}  # when the receive that brought it returned (monotonic)

    async def __call__(self, message: Message) -> None:
        self.received.setdefault(message.body, message.received_at)
        if message.body.startswith("fail"):
            raise LookupError(f"no such order: {message.body}")
        self.handled.setdefault(message.body, time.monotonic())


async def json_of(client: httpx.AsyncClient, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


async def test_pause_stops_receiving_and_resume_handles_what_came_meanwhile(
    make_queue: QueueFactory, sqs: SQSClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.operator")
    url = await make_queue()
    handler = Recorder()
    async with running(dataclasses.replace(BASE, queue_url=url), handler=handler) as service:
        client = service.client
        before = time.time()
        paused = await json_of(client, "POST", "/pause", 200, json={"reason": "deploying the orders database"})
        assert paused["paused"] is True
        assert before <= paused["paused_since"] <= time.time()
        assert (await json_of(client, "POST", "/pause", 200))["paused_since"] == paused["paused_since"]
        status = await json_of(client, "GET", "/status", 200)
        assert (status["paused"], status["paused_since"]) == (True, paused["paused_since"])
        # Paused on purpose: alive, and still ready (see docs/operations.md).
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200

        await publish(client, *({"body": f"while-paused-{i}"} for i in range(5)))
        await asyncio.sleep(3 * BASE.wait_time_seconds)  # several long polls' worth of time: none may receive
        assert await queue_counts(sqs, url) == (5, 0)
        assert handler.handled == {}

        resumed = await json_of(client, "POST", "/resume", 200, json={})
        assert resumed == {"paused": False, "paused_since": None}
        await until(lambda: len(handler.handled) == 5, what="the messages published while paused handled")
        assert (await client.get("/healthz")).status_code == 200
    audit = [r.__dict__ for r in caplog.records if r.__dict__.get("action") in ("pause", "resume")]
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("pause", "paused"),
        ("pause", "already paused"),
        ("resume", "resumed"),
    ]
    assert audit[0]["asked"] == {"reason": "deploying the orders database"}


async def test_a_drain_while_paused_drains(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue()
    async with running(dataclasses.replace(BASE, queue_url=url), handler=Recorder()) as service:
        await json_of(service.client, "POST", "/pause", 200)
        await publish(service.client, {"body": "left for the next pod"})
        summary = await asyncio.wait_for(service.client.post("/drain"), 30)
        assert summary.status_code == 200, summary.text
        assert (await client_status(service.client))["draining"] is True
        assert "draining" in (await json_of(service.client, "POST", "/resume", 409))["error"]
        limits = await json_of(service.client, "PUT", "/limits", 409, json={"max_messages_per_s": 5})
        assert "draining" in limits["error"]
        assert (await json_of(service.client, "GET", "/limits", 200))["max_messages_per_s"] is None
    assert await queue_counts(sqs, url) == (1, 0)  # not received, not lost


async def client_status(client: httpx.AsyncClient) -> dict[str, Any]:
    result: dict[str, Any] = await json_of(client, "GET", "/status", 200)
    return result


async def test_the_rate_limit_holds(make_queue: QueueFactory) -> None:
    url = await make_queue()
    handler = Recorder()
    # Configured from the start: receive calls issued before a PUT /limits are not bound by it.
    settings = dataclasses.replace(BASE, queue_url=url, concurrency=10, max_messages_per_s=5)
    async with running(settings, handler=handler) as service:
        client = service.client
        assert await json_of(client, "GET", "/limits", 200) == {"max_messages_per_s": 5}
        await publish(client, *({"body": f"r{i}"} for i in range(40)))
        await until(lambda: len(handler.received) >= 35, timeout_s=40, what="35 messages received")
        times = sorted(handler.received.values())
        # A token bucket lets through at most its size (one second's worth: 5) plus what the long polls in flight
        # took while the queue was empty (the rate x MQ_WAIT_TIME_SECONDS: 5), then the rate: measured between
        # the first and the last receive, strictly at most 5/s (+10%).
        burst = 5 + 5 * BASE.wait_time_seconds
        rate_per_s = (len(times) - 1 - burst) / (times[-1] - times[0])
        assert rate_per_s <= 5 * 1.1, [round(t - times[0], 2) for t in times]
        assert rate_per_s >= 5 * 0.3, rate_per_s  # generous: a busy machine may well be slower than the limit
        assert await json_of(client, "PUT", "/limits", 200, json={"max_messages_per_s": None}) == {
            "max_messages_per_s": None
        }
        assert (await client_status(client))["max_messages_per_s"] is None
        await until(lambda: len(handler.handled) == 40, what="the rest handled once the limit is gone")


async def test_put_limits_changes_the_limit(make_queue: QueueFactory) -> None:
    async with running(dataclasses.replace(BASE, queue_url=await make_queue())) as service:
        client = service.client
        assert await json_of(client, "GET", "/limits", 200) == {"max_messages_per_s": None}
        assert await json_of(client, "PUT", "/limits", 200, json={"max_messages_per_s": 2.5}) == {
            "max_messages_per_s": 2.5
        }
        assert service.runtime.server.rate_limit == 2.5
        assert (await client_status(client))["max_messages_per_s"] == 2.5


async def test_the_last_handler_errors(make_queue: QueueFactory) -> None:
    async with running(dataclasses.replace(BASE, queue_url=await make_queue()), handler=Recorder()) as service:
        ids = await publish(service.client, {"body": "fail-42"})
        errors: list[dict[str, Any]] = []

        async def seen() -> bool:
            errors[:] = (await json_of(service.client, "GET", "/errors", 200))["errors"]
            return bool(errors)

        await eventually(seen, what="the error in /errors")
        assert errors[0]["message_id"] == ids[0]
        assert errors[0]["error_type"] == "LookupError"
        assert errors[0]["error"] == "no such order: fail-42"
        assert errors[0]["at"] <= time.time()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "names"),
    [
        ("POST", "/pause", {"content": b"{", "headers": JSON_TYPE}, 400, "not valid JSON"),
        ("POST", "/pause", {"json": {"why": "x"}}, 422, "unknown field 'why'"),
        ("POST", "/resume", {"json": {"reason": 5}}, 422, "$.reason"),
        ("PUT", "/limits", {"json": {}}, 422, "'max_messages_per_s' is required"),
        ("PUT", "/limits", {"json": {"max_messages_per_s": 0}}, 422, "max_messages_per_s"),
        ("PUT", "/limits", {"json": {"max_messages_per_s": -1}}, 422, "max_messages_per_s"),
        ("PUT", "/limits", {"json": {"max_messages_per_s": "fast"}}, 422, "max_messages_per_s"),
        ("PUT", "/limits", {"json": {"max_messages_per_s": 1e9}}, 422, "max_messages_per_s"),
        ("PUT", "/limits", {"json": [5]}, 422, "must be an object"),
    ],
)
async def test_bad_operator_requests_are_refused(
    make_queue: QueueFactory, method: str, path: str, kwargs: dict[str, Any], status: int, *, names: str
) -> None:
    async with running(dataclasses.replace(BASE, queue_url=await make_queue())) as service:
        body = await json_of(service.client, method, path, status, **kwargs)
        assert names in body["error"]
        assert (await client_status(service.client))["paused"] is False


async def test_the_token_is_enforced_on_every_new_route(make_queue: QueueFactory) -> None:
    settings = dataclasses.replace(BASE, queue_url=await make_queue(max_receive_count=2), admin_token=TOKEN)
    async with running(settings) as service:
        client = service.client
        for method, path in NEW_ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert "Bearer" in response.json()["error"]
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        for method, path in NEW_ROUTES:
            response = await client.request(method, path, headers=authorized)
            assert response.status_code != 401, (method, path)
        # The page itself is open: it asks for the token and sends it with its calls.
        assert (await client.get("/console")).status_code == 200


async def test_the_openapi_document_describes_every_new_route(make_queue: QueueFactory) -> None:
    settings = dataclasses.replace(BASE, queue_url=await make_queue(), admin_token=TOKEN)
    async with running(settings) as service:
        document = await json_of(service.client, "GET", "/openapi.json", 200)
    paths = document["paths"]
    for method, path in NEW_ROUTES:
        operation = paths[path][method.lower()]
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert "401" in operation["responses"]
        for status, response in operation["responses"].items():
            assert "description" in response, (path, status)
            assert "schema" in response["content"]["application/json"], (path, status)
    assert set(paths["/dlq/redrive"]["post"]["responses"]) >= {"202", "400", "404", "409", "422", "502", "503"}
    assert set(paths["/limits"]["put"]["responses"]) >= {"200", "400", "401", "409", "415", "421", "422"}
    assert "security" not in paths["/console"]["get"]


async def test_the_console_is_served_and_slash_leads_there(make_queue: QueueFactory) -> None:
    async with running(dataclasses.replace(BASE, queue_url=await make_queue())) as service:
        client = service.client
        home = await client.get("/", follow_redirects=False)
        assert home.status_code == 307
        assert home.headers["location"] == "/console"
        page = await client.get("/console")
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        for testid in ("handled", "failed", "in-flight", "queue-visible", "dlq-visible", "pause", "resume"):
            assert f'data-testid="{testid}"' in page.text
        for testid in ("redrive", "redrive-state", "state"):
            assert f'data-testid="{testid}"' in page.text
        script = await client.get("/console/console.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "sessionStorage" in script.text
        assert (await client.get("/console/secrets.txt")).status_code == 404


async def test_operator_actions_are_counted_in_the_metrics(make_queue: QueueFactory) -> None:
    telemetry = Telemetry.from_env({})
    try:
        settings = dataclasses.replace(BASE, queue_url=await make_queue())
        async with running(settings, hooks=telemetry.hooks) as service:
            await json_of(service.client, "POST", "/pause", 200)
            await json_of(service.client, "PUT", "/limits", 422, json={"max_messages_per_s": -1})
            metrics = (await service.client.get("/metrics")).text
    finally:
        telemetry.shutdown()
    lines = [line for line in metrics.splitlines() if line.startswith("mq_operator_actions")]
    assert any('action="pause"' in line and 'outcome="ok"' in line and line.endswith(" 1.0") for line in lines), lines
    assert any('action="limits"' in line and 'outcome="refused"' in line for line in lines), lines
