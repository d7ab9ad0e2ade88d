"""FIFO group order under failure, on a real FIFO queue of the local SQS server."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pytest

from service import Message, PipelineObserver, Retry, Server
from service.consumer.processors import PartitionedProcessor
from tests.support.sqs import QueueFactory, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

GROUPS = ("a", "b", "c", "d")
PER_GROUP = 8


class Record(PipelineObserver):
    """Every success in the order it happened, and every deleted message (SQS may deliver one twice)."""

    def __init__(self) -> None:
        self.successes: dict[str, list[int]] = defaultdict(list)
        self.gone: list[str] = []

    def succeeded(self, message: Message) -> None:
        group, index = message.body.split(":")
        self.successes[group].append(int(index))

    def deleted(self, messages: Sequence[Message]) -> None:
        self.gone.extend(m.body for m in messages)

    def first_successes(self, group: str) -> list[int]:
        """The order in which the group's messages first succeeded (a duplicate delivery adds a later success)."""
        return list(dict.fromkeys(self.successes[group]))

    def complete(self) -> bool:
        return all(len(set(self.successes[g])) == PER_GROUP for g in GROUPS)


async def publish_groups(sqs: SQSClient, url: str) -> None:
    """Each group's messages in one batch: one receive then brings several of a group together."""
    for group in GROUPS:
        await send_messages(sqs, url, [f"{group}:{i}" for i in range(PER_GROUP)], MessageGroupId=group)


def failing_handler(record: Record, fail: Callable[[Message, int], None]) -> Callable[[Message], Awaitable[None]]:
    async def handler(message: Message) -> None:
        _, index = message.body.split(":")
        await asyncio.sleep(0.01)
        fail(message, int(index))
        record.succeeded(message)

    return handler


def fail_mid_group(message: Message, index: int) -> None:
    """A raise in group a, a Retry in group b, a timeout in group c: each on the first delivery only."""
    if message.receive_count > 1:
        return
    group = message.body[0]
    if group == "a" and index == 3:
        raise RuntimeError("boom")
    if group == "b" and index == 2:
        raise Retry(1)
    if group == "c" and index == 5:
        raise TimeoutError("the downstream call timed out")


@pytest.mark.parametrize("processor", ["auto", "partitioned"])
async def test_failures_mid_group_keep_every_groups_order(
    sqs: SQSClient, make_queue: QueueFactory, processor: str
) -> None:
    url = await make_queue(fifo=True, ContentBasedDeduplication="true")
    await publish_groups(sqs, url)
    record = Record()
    server = Server(
        url,
        failing_handler(record, fail_mid_group),
        client=sqs,
        processor=processor,  # type: ignore[arg-type]
        concurrency=4,
        deletion_interval_s=0.2,
        wait_time_seconds=0,
        observer=record,
    )
    assert isinstance(server.processor, PartitionedProcessor)
    async with server:
        await until(record.complete, timeout_s=60, what="every message handled")
        await until(lambda: server.health.deleted >= len(GROUPS) * PER_GROUP, what="every message deleted")
    for group in GROUPS:
        assert record.first_successes(group) == list(range(PER_GROUP)), group
    assert set(record.gone) <= {f"{g}:{i}" for g in GROUPS for i in record.successes[g]}
    assert server.health.failed >= 3
    assert server.health.released >= 1  # the failed messages' held group mates were handed back
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_cancellation_at_shutdown_keeps_the_groups_order(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue(fifo=True, ContentBasedDeduplication="true")
    await publish_groups(sqs, url)
    record = Record()
    blocked = asyncio.Event()

    async def blocking(message: Message) -> None:
        group, index = message.body.split(":")
        if group == "a" and index == "2":
            blocked.set()
            await asyncio.Event().wait()  # never finishes: cancelled by the shutdown
        record.succeeded(message)

    first = Server(
        url, blocking, client=sqs, concurrency=4, deletion_interval_s=0.2, wait_time_seconds=0, observer=record
    )
    async with first:
        await asyncio.wait_for(blocked.wait(), 30)
        summary = await first.shutdown(timeout_s=0.2)
    assert summary.cancelled == 1
    assert record.successes["a"] == [0, 1]

    async def plain(message: Message) -> None:
        record.succeeded(message)

    second = Server(
        url, plain, client=sqs, concurrency=4, deletion_interval_s=0.2, wait_time_seconds=0, observer=record
    )
    async with second:
        await until(record.complete, timeout_s=60, what="every message handled")
        await until(lambda: not second.in_flight)
    for group in GROUPS:
        assert record.first_successes(group) == list(range(PER_GROUP)), group
    assert set(record.gone) <= {f"{g}:{i}" for g in GROUPS for i in record.successes[g]}
    assert await queue_counts(sqs, url) == (0, 0)
