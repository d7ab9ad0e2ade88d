"""Every control per queue, over HTTP: pause one queue while another runs, its own limits, depths and status."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from service import Message
from service.app.consumers import QueueSpec
from tests.support.runtime import BASE, running
from tests.support.sqs import QueueFactory, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_pausing_one_queue_leaves_the_others_consuming(make_queue: QueueFactory, sqs: SQSClient) -> None:
    urls = {"orders": await make_queue(max_receive_count=3), "audit": await make_queue()}
    handled: dict[str, list[str]] = {"orders": [], "audit": []}

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            handled[name].append(message.body)

        return handle

    specs = [
        QueueSpec(name, url, dataclasses.replace(BASE, queue_url=url), handler(name)) for name, url in urls.items()
    ]
    async with running(BASE, queues=specs) as service:
        client = service.client
        paused = await client.post("/queues/orders/pause", json={"reason": "maintenance"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
        await send_messages(sqs, urls["orders"], ["o1", "o2"])
        await send_messages(sqs, urls["audit"], ["a1", "a2", "a3"])
        servers = {name: consumer.server for name, consumer in service.runtime.consumers.items()}
        await until(lambda: servers["audit"].health.deleted == 3, what="the running queue consumed")
        assert sorted(handled["audit"]) == ["a1", "a2", "a3"]
        assert handled["orders"] == []
        assert (await queue_counts(sqs, urls["orders"]))[0] == 2  # still waiting in the paused queue

        status = (await client.get("/status")).json()
        assert set(status["queues"]) == {"orders", "audit"}
        assert (status["queues"]["orders"]["paused"], status["queues"]["audit"]["paused"]) == (True, False)
        assert status["queues"]["audit"]["pipeline"]["deleted"] == 3
        assert status["queues"]["orders"]["queue_url"] == urls["orders"]
        totals = status["pipeline"]
        assert totals["deleted"] == sum(entry["pipeline"]["deleted"] for entry in status["queues"].values())
        assert status["paused"] is True  # the un-named routes' queue: the first one

        limits = await client.put("/queues/audit/limits", json={"max_messages_per_s": 5})
        assert limits.json() == {"max_messages_per_s": 5}
        assert (servers["audit"].rate_limit, servers["orders"].rate_limit) == (5, None)

        depths = await client.get("/queues/orders")
        assert depths.status_code == 200
        assert depths.json()["queue"]["url"] == urls["orders"]
        assert depths.json()["dead_letter_queue"] is not None
        assert (await client.get("/queues/audit/dlq/messages")).status_code == 404  # audit has no dead-letter queue
        assert (await client.get("/queues/orders/dlq/messages")).json()["messages"] == []

        published = await client.post("/queues/audit/publish", json={"route": "x", "body": "a4"})
        assert published.status_code == 200, published.text
        await until(lambda: servers["audit"].health.deleted == 4, what="the published message handled by audit")
        assert sorted(handled["audit"]) == ["a1", "a2", "a3", "a4"]
        assert (await client.get("/openapi.json")).json()["paths"].keys() >= {"/queues/orders/publish", "/publish"}

        unknown = await client.post("/queues/nowhere/pause")
        assert unknown.status_code == 404
        assert "no queue named 'nowhere'" in unknown.json()["error"]

        assert (await client.post("/queues/orders/resume")).json()["paused"] is False
        await until(lambda: servers["orders"].health.deleted == 2, what="the resumed queue consumed")
        assert sorted(handled["orders"]) == ["o1", "o2"]


async def test_a_one_queue_service_has_its_queue_under_its_name(make_queue: QueueFactory) -> None:
    url = await make_queue()
    name = url.rsplit("/", 1)[1]
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        status = (await service.client.get("/status")).json()
        assert list(status["queues"]) == [name]
        assert (await service.client.post(f"/queues/{name}/pause")).json()["paused"] is True
        assert service.runtime.server.paused
        assert (await service.client.get("/status")).json()["paused"] is True
        assert (await service.client.post("/resume")).json()["paused"] is False
        paths = (await service.client.get("/openapi.json")).json()["paths"]
        assert {"/queues/{name}/pause", "/queues/{name}/dlq/redrive", "/queues/{name}"} <= set(paths)
        assert paths["/queues/{name}/pause"]["post"]["parameters"][0]["schema"]["enum"] == [name]
