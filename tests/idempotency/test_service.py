"""The guard in the running service: configured by MQ_IDEMPOTENCY_*, counted in /status and /metrics, on spans."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import Message
from service.app.config import Settings
from service.app.consumers import QueueSpec
from service.errors import ConfigError
from service.telemetry import Telemetry
from tests.support.redis import free_port
from tests.support.runtime import BASE, running
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_the_same_body_sent_twice_runs_once_and_the_skip_is_counted_and_on_its_span(
    sqs: SQSClient, make_queue: QueueFactory, redis_url: str
) -> None:
    url = await make_queue()
    handled: Counter[str] = Counter()

    async def handler(message: Message) -> None:
        handled[message.body] += 1

    exporter = InMemorySpanExporter()
    telemetry = Telemetry.from_env({}, span_processor=SimpleSpanProcessor(exporter))
    settings = dataclasses.replace(
        BASE, queue_url=url, concurrency=1, idempotency_store=redis_url, idempotency_key="body"
    )
    async with running(settings, handler=handler, hooks=telemetry.hooks) as service:
        await send_messages(sqs, url, ["order-1"])
        await until(lambda: service.runtime.server.health.deleted == 1, what="the first copy deleted")
        await send_messages(sqs, url, ["order-1", "order-2"])
        await until(lambda: service.runtime.server.health.deleted == 3, what="all three deleted")
        status = (await service.client.get("/status")).json()
        metrics = (await service.client.get("/metrics")).text
    assert handled == {"order-1": 1, "order-2": 1}
    assert status["idempotency"]["completed"] == 2
    assert status["idempotency"]["skipped"] == 1
    assert status["idempotency"]["store_errors"] == 0
    assert 'mq_idempotency_messages_total{messaging_destination_name="' in metrics
    assert 'outcome="skipped"} 1.0' in metrics
    outcomes = Counter(
        (span.attributes or {}).get("mq.idempotency.outcome")
        for span in exporter.get_finished_spans()
        if span.name.startswith("process ")
    )
    assert outcomes == {"completed": 2, "skipped": 1}
    assert await queue_counts(sqs, url) == (0, 0)


async def test_with_the_store_down_nothing_is_handled_and_readyz_says_why(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    handled: list[str] = []

    async def handler(message: Message) -> None:
        handled.append(message.body)

    down = f"redis://127.0.0.1:{free_port()}/0"
    settings = dataclasses.replace(BASE, queue_url=url, idempotency_store=down)
    async with running(settings, handler=handler) as service:
        await send_messages(sqs, url, [f"m{i}" for i in range(3)])
        [consumer] = service.runtime.consumers.values()
        guard = consumer.idempotency
        assert guard is not None
        await until(lambda: guard.counts["store_errors"] >= 3, what="three store errors")
        ready = await service.client.get("/readyz")
        status = (await service.client.get("/status")).json()
    assert handled == []
    assert ready.status_code == 503
    assert "idempotency store failed" in ready.json()["reason"]
    assert status["idempotency"]["store_errors"] >= 3
    assert "Redis" in status["idempotency"]["last_store_error"]
    assert service.runtime.server.health.deleted == 0

    async def all_still_queued() -> bool:
        visible, invisible = await queue_counts(sqs, url)
        return visible + invisible == 3

    await eventually(all_still_queued, what="every message still in the queue")


async def test_each_queue_has_its_guard_counted_under_its_name(
    sqs: SQSClient, make_queue: QueueFactory, redis_url: str
) -> None:
    urls = {"orders": await make_queue(), "audit": await make_queue()}
    handled: Counter[tuple[str, str]] = Counter()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            handled[name, message.body] += 1

        return handle

    base = dataclasses.replace(BASE, concurrency=1, idempotency_store=redis_url, idempotency_key="body")
    specs = [
        QueueSpec(name, url, dataclasses.replace(base, queue_url=url), handler(name)) for name, url in urls.items()
    ]
    async with running(base, queues=specs) as service:
        servers = {name: consumer.server for name, consumer in service.runtime.consumers.items()}
        await send_messages(sqs, urls["audit"], ["a-1"])
        await until(lambda: servers["audit"].health.deleted == 1, what="the first copy deleted")
        await send_messages(sqs, urls["audit"], ["a-1"])
        # The same body on another queue is another key: each queue's keys are its own.
        await send_messages(sqs, urls["orders"], ["a-1", "o-1"])
        await until(lambda: servers["audit"].health.deleted == 2, what="the audit queue's copy deleted")
        await until(lambda: servers["orders"].health.deleted == 2, what="the orders queue's messages deleted")
        status = (await service.client.get("/status")).json()
    assert handled == {("audit", "a-1"): 1, ("orders", "a-1"): 1, ("orders", "o-1"): 1}
    queues = status["queues"]
    assert (queues["audit"]["idempotency"]["completed"], queues["audit"]["idempotency"]["skipped"]) == (1, 1)
    assert (queues["orders"]["idempotency"]["completed"], queues["orders"]["idempotency"]["skipped"]) == (2, 0)
    assert (status["idempotency"]["completed"], status["idempotency"]["skipped"]) == (3, 1)
    assert status["idempotency"]["problem"] is None


async def test_with_the_store_down_readyz_names_the_queue_that_cannot_handle(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    urls = {"orders": await make_queue(), "audit": await make_queue()}

    async def handler(message: Message) -> None:
        raise AssertionError("no handler runs unguarded")

    down = dataclasses.replace(BASE, idempotency_store=f"redis://127.0.0.1:{free_port()}/0")
    specs = [QueueSpec(name, url, dataclasses.replace(down, queue_url=url), handler) for name, url in urls.items()]
    async with running(down, queues=specs) as service:
        await send_messages(sqs, urls["audit"], ["a-1", "a-2", "a-3"])
        guard = service.runtime.consumers["audit"].idempotency
        assert guard is not None
        await until(lambda: guard.counts["store_errors"] >= 3, what="three store errors on the audit queue")
        ready = await service.client.get("/readyz")
        status = (await service.client.get("/status")).json()
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("queue audit: the idempotency store failed")
    assert status["queues"]["orders"]["idempotency"]["store_errors"] == 0
    assert status["idempotency"]["problem"].startswith("queue audit: ")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MQ_IDEMPOTENCY_STORE", "postgres://db/x"),
        ("MQ_IDEMPOTENCY_STORE", "dynamodb://"),
        ("MQ_IDEMPOTENCY_KEY", "order_id"),
        ("MQ_IDEMPOTENCY_KEY", "attribute:"),
        ("MQ_IDEMPOTENCY_EXPIRES_S", "0"),
        ("MQ_IDEMPOTENCY_EXPIRES_S", "an hour"),
    ],
)
def test_a_bad_idempotency_setting_names_the_variable_and_what_is_allowed(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.name == variable
    assert raised.value.allowed


def test_idempotency_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "MQ_IDEMPOTENCY_STORE": "dynamodb://orders-idempotency",
            "MQ_IDEMPOTENCY_KEY": "attribute:order_id",
            "MQ_IDEMPOTENCY_EXPIRES_S": "86400",
        }
    )
    assert settings.idempotency_store == "dynamodb://orders-idempotency"
    assert settings.idempotency_key == "attribute:order_id"
    assert settings.idempotency_expires_s == 86400


def test_a_store_password_never_shows_in_the_settings_summary() -> None:
    settings = Settings.from_env({"MQ_IDEMPOTENCY_STORE": "rediss://default:hunter2@redis.internal:6380/0"})
    assert settings.summary()["idempotency_store"] == "rediss://default:***@redis.internal:6380/0"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.summary())
