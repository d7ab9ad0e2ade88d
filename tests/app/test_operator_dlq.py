"""The queue and dead-letter routes end to end: the whole service on real uvicorn, against moto.

moto has no StartMessageMoveTask (it answers 500 "not implemented"), so every redrive here is the
client-side move.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from service import Message
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import QueueFactory, dead_letter_queue_of, eventually, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class Switch:
    """A handler that fails while `failing` and records what it handled."""

    def __init__(self) -> None:
        self.failing = True
        self.handled: set[str] = set()

    async def __call__(self, message: Message) -> None:
        if self.failing:
            raise RuntimeError(f"refusing {message.body}")
        self.handled.add(message.body)


async def json_of(client: httpx.AsyncClient, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


async def redrive_ended(client: httpx.AsyncClient) -> dict[str, Any]:
    state: dict[str, Any] = {}

    async def ended() -> bool:
        state.update(await json_of(client, "GET", "/dlq/redrive", 200))
        return bool(state["state"] != "running")

    await eventually(ended, timeout_s=30, what="the redrive's end")
    return state


async def test_queues_shows_the_queue_and_its_dead_letter_queue(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue(max_receive_count=4)
    dlq_url = await dead_letter_queue_of(sqs, url)
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        await send_messages(sqs, dlq_url, ["a", "b", "c"])
        queues = await json_of(service.client, "GET", "/queues", 200)
        assert queues["queue"]["url"] == url
        assert queues["queue"]["max_receive_count"] == 4
        assert queues["publish_queue"] is None
        dlq = queues["dead_letter_queue"]
        assert dlq["url"] == dlq_url
        assert dlq["name"] == dlq_url.rsplit("/", 1)[1]
        assert set(dlq) == {"url", "name", "visible", "in_flight", "delayed"}
        # Cached: a page polling /queues does not reach SQS on every call.
        await send_messages(sqs, dlq_url, ["d"])
        seen = [(await json_of(service.client, "GET", "/queues", 200))["dead_letter_queue"]["visible"]]
        assert seen[0] in (0, 3)  # the first read may have been before moto counted the first three

        async def counted() -> bool:
            queues = await json_of(service.client, "GET", "/queues", 200)
            return bool(queues["dead_letter_queue"]["visible"] == 4)

        await eventually(counted, what="the cache's refresh")


async def test_a_queue_without_dead_letter_queue_and_another_publish_queue(make_queue: QueueFactory) -> None:
    out = await make_queue()
    settings = dataclasses.replace(BASE, queue_url=await make_queue(), publish_queue_url=out)
    async with running(settings) as service:
        await publish(service.client, {"body": "out"})
        queues = await json_of(service.client, "GET", "/queues", 200)
        assert queues["dead_letter_queue"] is None
        assert queues["queue"]["max_receive_count"] is None
        assert queues["publish_queue"] == {
            "url": out,
            "name": out.rsplit("/", 1)[1],
            "visible": 1,
            "in_flight": 0,
            "delayed": 0,
        }
        body = await json_of(service.client, "GET", "/dlq/messages", 404)
        assert "no dead-letter queue" in body["error"]
        assert "no dead-letter queue" in (await json_of(service.client, "POST", "/dlq/redrive", 404))["error"]


async def test_peek_shows_dead_lettered_messages_and_redrive_brings_them_back(
    make_queue: QueueFactory, sqs: SQSClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.operator")
    url = await make_queue(max_receive_count=1)
    dlq_url = await dead_letter_queue_of(sqs, url)
    handler = Switch()
    async with running(dataclasses.replace(BASE, queue_url=url), handler=handler) as service:
        client = service.client
        bodies = {f"m{i}" for i in range(4)}
        ids = await publish(client, *({"body": body, "route": "r"} for body in sorted(bodies)))

        async def dead_lettered() -> bool:
            return (await queue_counts(sqs, dlq_url))[0] == len(bodies)

        await eventually(dead_lettered, timeout_s=30, what="the failing messages in the DLQ")
        peeked = await json_of(client, "GET", "/dlq/messages", 200, params={"limit": 10})
        assert peeked["queue"]["url"] == dlq_url
        assert "no peek" in peeked["note"]
        messages = {m["message_id"]: m for m in peeked["messages"]}
        assert set(messages) <= set(ids)
        assert len(messages) >= 1
        for message in messages.values():
            assert message["body"] in bodies
            assert message["body_truncated"] is False
            assert message["message_attributes"]["route"] == {"DataType": "String", "StringValue": "r"}
            assert message["receive_count"] >= 2  # once in the source queue, once for this peek
            assert message["sent_at"].endswith("+00:00")
        assert (await queue_counts(sqs, dlq_url))[0] == len(bodies)  # handed back at once
        assert any(r.__dict__.get("action") == "dlq.peek" for r in caplog.records)

        handler.failing = False
        started = await json_of(client, "POST", "/dlq/redrive", 202, json={})
        assert started["state"] == "running"
        assert started["mode"] == "client"
        assert started["to_move"] == len(bodies)
        ended = await redrive_ended(client)
        assert ended == ended | {"state": "completed", "moved": len(bodies), "failure": None}
        await until(lambda: handler.handled == bodies, timeout_s=30, what="the redriven messages handled")
        assert await queue_counts(sqs, dlq_url) == (0, 0)
        audit = [r.__dict__ for r in caplog.records if r.__dict__.get("action") == "dlq.redrive"]
        assert len(audit) == 1
        assert audit[0]["status"] == 202
        assert audit[0]["asked"] == {}


async def test_cancel_stops_a_slow_redrive_and_a_second_one_is_refused(
    make_queue: QueueFactory, sqs: SQSClient
) -> None:
    url = await make_queue(max_receive_count=3)
    dlq_url = await dead_letter_queue_of(sqs, url)
    destination = await make_queue()
    await send_messages(sqs, dlq_url, [f"m{i}" for i in range(20)])
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        client = service.client
        asked = {"max_messages_per_s": 2, "destination": destination}
        started = await json_of(client, "POST", "/dlq/redrive", 202, json=asked)
        assert started["destination"] == destination
        conflict = await json_of(client, "POST", "/dlq/redrive", 409, json={})
        assert "already running" in conflict["error"]

        async def some_moved() -> bool:
            return bool((await json_of(client, "GET", "/dlq/redrive", 200))["moved"] >= 2)

        await eventually(some_moved, what="a first batch moved")
        cancelled = await json_of(client, "DELETE", "/dlq/redrive", 200)
        assert cancelled["state"] == "cancelled"
        moved = cancelled["moved"]
        assert 2 <= moved < 20
        assert (await json_of(client, "GET", "/dlq/redrive", 200))["moved"] == moved  # it stopped
        assert await queue_counts(sqs, destination) == (moved, 0)
        assert sum(await queue_counts(sqs, dlq_url)) == 20 - moved
        assert "no redrive is running" in (await json_of(client, "DELETE", "/dlq/redrive", 409))["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "names"),
    [
        ("GET", "/dlq/messages", {"params": {"limit": 0}}, 422, "limit"),
        ("GET", "/dlq/messages", {"params": {"limit": 11}}, 422, "limit"),
        ("GET", "/dlq/messages", {"params": {"limit": "ten"}}, 422, "limit"),
        (
            "POST",
            "/dlq/redrive",
            {"content": b"{nope", "headers": {"Content-Type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ("POST", "/dlq/redrive", {"json": []}, 422, "must be an object"),
        ("POST", "/dlq/redrive", {"json": {"speed": 1}}, 422, "unknown field 'speed'"),
        ("POST", "/dlq/redrive", {"json": {"max_messages_per_s": 0}}, 422, "max_messages_per_s"),
        ("POST", "/dlq/redrive", {"json": {"max_messages_per_s": 501}}, 422, "max_messages_per_s"),
        ("POST", "/dlq/redrive", {"json": {"max_messages_per_s": 1.5}}, 422, "max_messages_per_s"),
        ("POST", "/dlq/redrive", {"json": {"destination": "orders"}}, 422, "destination"),
        ("DELETE", "/dlq/redrive", {}, 409, "no redrive is running"),
    ],
)
async def test_bad_dlq_requests_are_refused(
    make_queue: QueueFactory, method: str, path: str, kwargs: dict[str, Any], status: int, *, names: str
) -> None:
    async with running(dataclasses.replace(BASE, queue_url=await make_queue(max_receive_count=2))) as service:
        body = await json_of(service.client, method, path, status, **kwargs)
        assert names in body["error"]


async def test_redrive_to_a_missing_queue_is_refused(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue(max_receive_count=2)
    missing = url.rsplit("/", 1)[0] + "/no-such-queue"
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        body = await json_of(service.client, "POST", "/dlq/redrive", 404, json={"destination": missing})
        assert "does not exist" in body["error"]
        assert "destination" in body["error"]


async def test_a_whole_rate_written_as_a_float_is_taken(make_queue: QueueFactory) -> None:
    # JSON Schema's integers include 5.0; SQS's MaxNumberOfMessagesPerSecond takes only an int.
    async with running(dataclasses.replace(BASE, queue_url=await make_queue(max_receive_count=2))) as service:
        started = await json_of(service.client, "POST", "/dlq/redrive", 202, json={"max_messages_per_s": 5.0})
        assert started["max_messages_per_s"] == 5
        assert (await redrive_ended(service.client))["state"] == "completed"
