"""POST /publish against the Publisher's own limits and the publish queue's type (moto)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from handlers.example import router
from service.app.admin import create_app
from service.app.config import Settings
from service.app.runtime import Runtime
from service.publishing.publisher import Publisher
from tests.support.runtime import started
from tests.support.sqs import QueueFactory, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

BASE = Settings(admin_port=0, wait_time_seconds=1, deletion_interval_s=0.5, drain_timeout_s=2, publish_max_batch=3)


@pytest.fixture
async def runtime(make_queue: QueueFactory) -> AsyncIterator[Runtime]:
    async with started(dataclasses.replace(BASE, queue_url=await make_queue())) as running:
        yield running


def client_for(runtime: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://localhost")


async def test_the_publishers_configured_size_limit_decides(runtime: Runtime, sqs: SQSClient) -> None:
    small = Publisher(runtime.publish_queue_url, max_message_bytes=2048)
    await small.start()
    default = runtime.publisher
    runtime.publisher = small
    try:
        async with client_for(runtime) as client:
            over = await client.post("/publish", json={"body": "x" * 2000, "message_attributes": {"pad": "y" * 60}})
            fits = await client.post("/publish", json={"body": "x" * 2000})
    finally:
        await small.shutdown()
        runtime.publisher = default
    assert over.status_code == 422, over.text
    (problem,) = over.json()["problems"]
    assert problem["index"] == 0
    assert "2069 bytes (body and attributes); at most 2048" in problem["message"]
    assert fits.status_code == 200, fits.text


@pytest.mark.parametrize("content_based", [False, True])
async def test_a_fifo_publish_queue_gets_the_fifo_schema(
    make_queue: QueueFactory, sqs: SQSClient, content_based: bool
) -> None:
    fifo = await make_queue(fifo=True, ContentBasedDeduplication=str(content_based).lower())
    settings = dataclasses.replace(BASE, queue_url=await make_queue(), publish_queue_url=fifo)
    runtime = Runtime(settings, router, handle_signals=False)
    await runtime.start()
    try:
        async with client_for(runtime) as client:
            document = (await client.get("/openapi.json")).json()
            no_group = await client.post("/publish", json={"body": "x", "deduplication_id": "d"})
            delayed = await client.post(
                "/publish", json={"body": "x", "group_id": "g", "delay_s": 5, "deduplication_id": "d"}
            )
            no_dedup = await client.post("/publish", json={"body": "x", "group_id": "g"})
            full = await client.post("/publish", json={"body": "y", "group_id": "g", "deduplication_id": "d2"})
    finally:
        await runtime.drain()
    request = document["paths"]["/publish"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    message = request["oneOf"][0]
    assert {"group_id", "deduplication_id"} <= set(message["properties"])
    assert ("deduplication_id" in message["required"]) is not content_based
    assert no_group.status_code == 422
    assert "'group_id' is required" in no_group.text
    assert delayed.status_code == 422
    assert "must be 0 on a FIFO queue" in delayed.text
    assert no_dedup.status_code == (200 if content_based else 422), no_dedup.text
    assert full.status_code == 200, full.text
    assert await queue_counts(sqs, fifo) == ((2, 0) if content_based else (1, 0))


async def test_a_publisher_closed_while_the_request_was_read_answers_503(runtime: Runtime, sqs: SQSClient) -> None:
    # A drain that starts while a request is on its way closes the Publisher under it; stop it alone to get there.
    await runtime.publisher.shutdown()
    async with client_for(runtime) as client:
        response = await client.post("/publish", json={"body": "late"})
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "the service is draining: it publishes nothing more"}
    assert await queue_counts(sqs, runtime.publish_queue_url) == (0, 0)
