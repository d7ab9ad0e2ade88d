"""The whole service in the test's event loop: uvicorn on a loopback port, the Server and Publisher on moto."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import pytest
from aiobotocore.client import AioBaseClient

from service import Handler, Message, PipelineObserver
from service.sqs.client import ClientKind
from service.sqs.lean import LeanSQSClient
from service.telemetry.hooks import Hooks
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import CallCounter, QueueFactory, queue_counts, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_not_ready_until_the_queue_answers(make_queue: QueueFactory, sqs: SQSClient) -> None:
    existing = await make_queue()
    name = existing.rsplit("/", 1)[1] + "-later"
    url = existing.rsplit("/", 1)[0] + "/" + name  # created only once the service runs
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        health = service.runtime.server.health
        await until(lambda: health.last_receive_error is not None, what="the queue check failed")
        ready = await service.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == f"queue {url} does not exist (AWS.SimpleQueueService.NonExistentQueue)"
        assert (await service.client.get("/healthz")).status_code == 200  # SQS errors never fail liveness
        await sqs.create_queue(QueueName=name)
        try:
            await until(lambda: health.queue_checked_at is not None, what="the queue check passed")
            assert (await service.client.get("/readyz")).json() == {"ready": True}
            await publish(service.client, {"route": "hello", "body": "first"})
            await until(lambda: service.runtime.server.health.deleted == 1)
        finally:
            await sqs.delete_queue(QueueUrl=url)


async def test_publish_consume_delete_round_trip(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue()
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        ids = await publish(service.client, *({"route": "hello", "body": f"m{i}"} for i in range(5)))
        one = await service.client.post("/publish", json={"route": "hello", "body": {"n": 6}})
        assert one.status_code == 200
        health = service.runtime.server.health
        await until(lambda: health.deleted == 6)
        assert len(set(ids) | {one.json()["message_id"]}) == 6
        assert (health.handled, health.failed) == (6, 0)
        assert await queue_counts(sqs, url) == (0, 0)
        status = (await service.client.get("/status")).json()
        assert status["publisher"]["published"] == 6
    assert service.exit_code == 0


async def test_drain_during_in_flight_work_loses_nothing(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue()
    async with running(dataclasses.replace(BASE, queue_url=url)) as service:
        server = service.runtime.server
        await publish(service.client, *({"route": "hello", "body": "quick"} for _ in range(3)))
        await until(lambda: server.health.deleted == 3)
        # Two slow messages run (concurrency 2) and four wait for a worker when the drain begins.
        await publish(service.client, *({"route": "slow", "body": {"seconds": 30}} for _ in range(6)))
        await until(lambda: server.in_flight == 6)
        first = asyncio.create_task(service.client.post("/drain"))
        await until(lambda: service.runtime.draining)
        ready = await service.client.get("/readyz")
        assert (ready.status_code, ready.json()["reason"]) == (503, "draining")
        second = await service.client.post("/drain")
        summary = (await first).json()
        assert second.json() == summary
    server_summary = summary["server"]
    assert server_summary["timed_out"] is True  # the slow handlers outlived MQ_DRAIN_TIMEOUT_S=1
    assert (server_summary["deleted"], server_summary["cancelled"], server_summary["released"]) == (3, 2, 6)
    assert summary["publisher"]["published"] == 9
    assert await queue_counts(sqs, url) == (6, 0)  # every unfinished message is visible again at once


async def test_drain_lets_running_handlers_finish(make_queue: QueueFactory, sqs: SQSClient) -> None:
    url = await make_queue()
    async with running(dataclasses.replace(BASE, queue_url=url, drain_timeout_s=15)) as service:
        server = service.runtime.server
        await publish(service.client, *({"route": "slow", "body": {"seconds": 1}} for _ in range(2)))
        await until(lambda: server.in_flight == 2)
        summary = (await service.client.post("/drain")).json()
    assert summary["server"]["timed_out"] is False
    assert (summary["server"]["handled"], summary["server"]["deleted"]) == (2, 2)
    assert await queue_counts(sqs, url) == (0, 0)


class CountingObserver(PipelineObserver):
    def __init__(self) -> None:
        self.handled_ids: list[str] = []

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        self.handled_ids.append(message.message_id)


async def test_hooks_see_messages_and_every_sqs_call(make_queue: QueueFactory) -> None:
    url = await make_queue()
    calls = CallCounter()
    clients: list[SQSClient] = []

    def instrument(client: SQSClient) -> None:
        clients.append(client)
        calls.attach(client)

    observer = CountingObserver()
    queue_urls: list[str] = []

    def hooks(queue_url: str, publish_queue_url: str) -> Hooks:
        queue_urls.extend([queue_url, publish_queue_url])
        return Hooks(observer=observer, instrument_client=instrument)

    async with running(dataclasses.replace(BASE, queue_url=url), hooks=hooks) as service:
        ids = await publish(service.client, {"route": "hello", "body": "traced"})
        await until(lambda: service.runtime.server.health.deleted == 1)
    assert queue_urls == [url, url]
    assert len(clients) == 3  # the consumer's, the publisher's and the operator routes'
    assert observer.handled_ids == ids
    assert {"ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch"} <= set(calls)


class PipelineBug(BaseException):
    """Not an Exception: the Server does not catch it, so it escapes the pipeline as a real bug would."""


def crashing(handler: Handler) -> Handler:
    async def wrapper(message: Message) -> None:
        raise PipelineBug("a defect outside the handler's error handling")

    return wrapper


async def test_liveness_fails_when_the_pipeline_crashes(make_queue: QueueFactory) -> None:
    url = await make_queue()
    async with running(dataclasses.replace(BASE, queue_url=url), hooks=Hooks(wrap_handler=crashing)) as service:
        assert (await service.client.get("/healthz")).status_code == 200
        await publish(service.client, {"route": "hello", "body": "boom"})
        await until(lambda: not service.runtime.server.alive)
        alive = await service.client.get("/healthz")
        assert alive.status_code == 503
        assert alive.json() == {"alive": False, "reason": "the message pipeline stopped by itself"}
        assert (await service.client.get("/readyz")).status_code == 503
        assert service.runtime.crashed
        summary = (await service.client.post("/drain")).json()
        assert "PipelineBug" in summary["server"]["crashed"]
        assert (await service.client.get("/healthz")).status_code == 503  # a drain does not hide the crash
    assert service.exit_code == 1


@pytest.mark.parametrize("kind", ["lean", "botocore"])
async def test_mq_sqs_client_chooses_the_hot_paths_client(make_queue: QueueFactory, kind: ClientKind) -> None:
    url = await make_queue()
    clients: list[object] = []
    hooks = Hooks(instrument_client=clients.append)
    settings = dataclasses.replace(BASE, queue_url=url, sqs_client=kind)
    async with running(settings, hooks=hooks) as service:
        await publish(service.client, {"route": "hello", "body": kind})
        await until(lambda: service.runtime.server.health.deleted == 1)
    # The consumer's and the publisher's clients are of the kind asked for; the operator routes' (off the hot
    # path) is always aiobotocore's.
    lean = sum(isinstance(client, LeanSQSClient) for client in clients)
    botocore = sum(isinstance(client, AioBaseClient) for client in clients)
    assert (lean, botocore) == ((2, 1) if kind == "lean" else (0, 3))
