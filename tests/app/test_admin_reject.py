"""The example's `reject` and typed `order.created` routes through the service: counted in /status (moto)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import httpx

from service.app.admin import create_app
from service.app.config import Settings
from service.sqs.dead_letter import REASON_ATTRIBUTE
from tests.support.runtime import started
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, eventually, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

BASE = Settings(admin_port=0, wait_time_seconds=1, deletion_interval_s=0.5, drain_timeout_s=2)


async def test_rejected_messages_are_counted_in_status_and_land_in_the_dead_letter_queue(
    make_queue: QueueFactory, sqs: SQSClient
) -> None:
    url = await make_queue(max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    messages = [
        {"route": "order.created", "body": {"order_id": "o-1", "sku": "A-7", "quantity": 2}},
        {"route": "order.created", "body": {"order_id": "o-2"}},  # does not validate
        {"route": "order.created", "body": {"order_id": "o-3", "sku": "A-7", "quantity": 0}},  # the handler rejects
        {"route": "reject", "body": "x"},
    ]
    async with started(dataclasses.replace(BASE, queue_url=url)) as runtime:
        app = create_app(runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
            published = await client.post("/publish", json={"messages": messages})
            assert published.status_code == 200, published.text

            async def all_settled() -> bool:
                pipeline = (await client.get("/status")).json()["pipeline"]
                return bool(pipeline["rejected"] == 3 and pipeline["deleted"] == 4)

            await eventually(all_settled, what="three rejected, four deleted")
            pipeline = (await client.get("/status")).json()["pipeline"]
    assert (pipeline["handled"], pipeline["failed"]) == (1, 3)
    reasons = sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in await drain_queue(sqs, dlq))
    assert len(reasons) == 3, reasons
    assert reasons[0] == "order o-3 asks for 0 items"
    assert reasons[1].startswith("the body does not validate as OrderCreated: sku: Field required; quantity: ")
    assert reasons[2].startswith("the reject route rejects every message")
    assert await queue_counts(sqs, url) == (0, 0)
