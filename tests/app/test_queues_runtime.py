"""Several queues in one service, on the local SQS server: each queue's messages go to its own handler, with
its own processor; a missing queue keeps the pod unready and is named; a drain drains every queue, losing nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING

from service import Message
from service.app.consumers import QueueSpec
from service.telemetry import Telemetry
from tests.support.runtime import BASE, running
from tests.support.sqs import QueueFactory, drain_queue, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class Seen:
    """Which handler saw which message, and from which queue."""

    def __init__(self) -> None:
        self.by_handler: dict[str, list[tuple[str, str]]] = defaultdict(list)

    def handler(self, name: str, delay_s: float = 0.0):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            if delay_s:
                await asyncio.sleep(delay_s)
            self.by_handler[name].append((message.queue_url, message.body))

        return handle

    def bodies(self, name: str) -> set[str]:
        return {body for _, body in self.by_handler[name]}


def _spec(name: str, url: str, handler: object, **settings: object) -> QueueSpec:
    return QueueSpec(name, url, dataclasses.replace(BASE, queue_url=url, **settings), handler)  # type: ignore[arg-type]


async def test_three_queues_each_handled_by_its_own_handler(make_queue: QueueFactory, sqs: SQSClient) -> None:
    urls = [await make_queue() for _ in range(2)] + [await make_queue(fifo=True, ContentBasedDeduplication="true")]
    seen = Seen()
    specs = [
        _spec("orders", urls[0], seen.handler("orders"), processor="bounded", concurrency=3),
        _spec("audit", urls[1], seen.handler("audit"), processor="unbounded"),
        _spec("ledger.fifo", urls[2], seen.handler("ledger"), processor="partitioned", concurrency=2),
    ]
    async with running(BASE, queues=specs) as service:
        assert list(service.runtime.consumers) == ["orders", "audit", "ledger.fifo"]
        await send_messages(sqs, urls[0], [f"o{i}" for i in range(5)])
        await send_messages(sqs, urls[1], [f"a{i}" for i in range(4)])
        await send_messages(sqs, urls[2], [f"l{i}" for i in range(3)], MessageGroupId="g")
        servers = {name: consumer.server for name, consumer in service.runtime.consumers.items()}
        await until(lambda: [s.health.deleted for s in servers.values()] == [5, 4, 3], what="all deleted")
        assert seen.bodies("orders") == {f"o{i}" for i in range(5)}
        assert seen.bodies("audit") == {f"a{i}" for i in range(4)}
        assert seen.bodies("ledger") == {f"l{i}" for i in range(3)}
        for name, url in zip(("orders", "audit", "ledger"), urls, strict=True):
            assert {queue for queue, _ in seen.by_handler[name]} == {url}
        assert servers["ledger.fifo"].processor.capacity == 2
        assert (await service.client.get("/readyz")).json() == {"ready": True}
        for url in urls:
            assert await queue_counts(sqs, url) == (0, 0)
    assert service.exit_code == 0


async def test_a_missing_queue_keeps_the_pod_unready_and_is_named(make_queue: QueueFactory, sqs: SQSClient) -> None:
    present = await make_queue()
    name = present.rsplit("/", 1)[1] + "-later"
    missing = present.rsplit("/", 1)[0] + "/" + name
    seen = Seen()
    specs = [_spec("present", present, seen.handler("present")), _spec("later", missing, seen.handler("later"))]
    async with running(BASE, queues=specs) as service:
        later = service.runtime.consumers["later"].server.health
        await until(lambda: later.last_receive_error is not None, what="the missing queue's check failed")
        ready = await service.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith(f"queue later: queue {missing} does not exist")
        await send_messages(sqs, present, ["p"])  # the queue that exists is consumed meanwhile
        await until(lambda: seen.bodies("present") == {"p"}, what="the present queue consumed")
        await sqs.create_queue(QueueName=name)
        try:
            await until(lambda: later.queue_checked_at is not None, what="the late queue answered")
            assert (await service.client.get("/readyz")).json() == {"ready": True}
        finally:
            await sqs.delete_queue(QueueUrl=missing)


async def test_a_drain_drains_every_queue_and_loses_nothing(make_queue: QueueFactory, sqs: SQSClient) -> None:
    urls = [await make_queue(), await make_queue()]
    seen = Seen()
    sent = {url: [f"{index}-{i}" for i in range(6)] for index, url in enumerate(urls)}
    specs = [
        _spec("slow", urls[0], seen.handler("slow", delay_s=0.3), concurrency=2),
        _spec("slower", urls[1], seen.handler("slower", delay_s=0.5), processor="unbounded"),
    ]
    async with running(dataclasses.replace(BASE, drain_timeout_s=0.2), queues=specs) as service:
        for url, bodies in sent.items():
            await send_messages(sqs, url, bodies)
        servers = service.runtime.servers
        await until(lambda: all(server.in_flight > 0 for server in servers), what="both queues busy")
        summary = (await service.client.post("/drain")).json()
        assert set(summary["queues"]) == {"slow", "slower"}
        assert summary["server"] == summary["queues"]["slow"]
        assert all(not server.alive or server.health.draining for server in servers)
    for url, name in zip(urls, ("slow", "slower"), strict=True):
        left = {message["Body"] for message in await drain_queue(sqs, url)}
        # At least once: every message was handled (and deleted) or is back in its queue; none is lost.
        assert set(sent[url]) <= seen.bodies(name) | left, name


async def test_each_queues_metrics_carry_its_name(make_queue: QueueFactory, sqs: SQSClient) -> None:
    telemetry = Telemetry.from_env({})
    urls = [await make_queue(), await make_queue()]
    names = [url.rsplit("/", 1)[1] for url in urls]
    seen = Seen()
    specs = [_spec(name, url, seen.handler(name)) for name, url in zip(names, urls, strict=True)]
    try:
        async with running(BASE, queues=specs, hooks=telemetry.hooks) as service:
            await send_messages(sqs, urls[0], ["a", "b"])
            await send_messages(sqs, urls[1], ["c"])
            servers = service.runtime.servers
            await until(lambda: [server.health.deleted for server in servers] == [2, 1], what="all deleted")
            metrics = (await service.client.get("/metrics")).text
    finally:
        telemetry.shutdown()
    handled = [line for line in metrics.splitlines() if line.startswith("mq_messages_handled_total")]
    for name, count in zip(names, (2, 1), strict=True):
        assert any(
            f'messaging_destination_name="{name}"' in line and line.endswith(f" {count}.0") for line in handled
        ), handled
