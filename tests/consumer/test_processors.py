"""Processors: per-key order, a slow partition not stalling others, unbounded fan-out, stable hashing."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from service import Message, PipelineObserver, Server
from service.consumer.processors import PartitionedProcessor, partition_of
from tests.support.sqs import QueueFactory, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


def keyed(key: str) -> dict[str, object]:
    return {"MessageAttributes": {"partition_key": {"DataType": "String", "StringValue": key}}}


async def test_partitioned_keeps_per_key_order_and_a_slow_key_does_not_block_others(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    # Keys of the other partitions (a key sharing the slow key's partition waits behind it, by design).
    partitions = PartitionedProcessor(4).partitions
    others = [
        k for k in (f"key-{i}" for i in range(50)) if partition_of(k, partitions) != partition_of("slow", partitions)
    ]
    others = others[:5]
    # Key "slow" first, then plenty of other keys behind it.
    for key in ("slow", *others):
        await send_messages(sqs, url, [f"{key}:{i}" for i in range(5)], **keyed(key))
    order: dict[str, list[int]] = defaultdict(list)
    arrival = Arrival()
    unblock = asyncio.Event()
    running: set[str] = set()
    overlaps: list[str] = []

    async def handler(message: Message) -> None:
        key, index = message.body.split(":")
        if key in running:
            overlaps.append(key)
        running.add(key)
        if key == "slow":
            await unblock.wait()
        await asyncio.sleep(0)
        running.discard(key)
        order[key].append(int(index))

    # By set, not by count: SQS (and moto) may deliver a message twice.
    def done(*keys: str) -> bool:
        return all(set(order[k]) == set(range(5)) for k in keys)

    server = Server(
        url,
        handler,
        client=sqs,
        processor="partitioned",
        concurrency=4,
        prefetch=40,
        observer=arrival,
        deletion_interval_s=0.5,
        wait_time_seconds=0,
    )
    async with server:
        # Every other key completes while "slow" is stuck on its first message.
        await until(lambda: done(*others))
        assert order["slow"] == []
        unblock.set()
        await until(lambda: done("slow"))
    # A standard queue does not keep order; the processor keeps each key's order of arrival (what it ran is the
    # start of what arrived: a duplicate arriving last may be handed back unhandled at shutdown).
    for key in ("slow", *others):
        assert order[key] == arrival.order[key][: len(order[key])], key
        assert sorted(set(order[key])) == [0, 1, 2, 3, 4], key
    assert overlaps == []
    assert await queue_counts(sqs, url) == (0, 0)


class Arrival(PipelineObserver):
    """The order in which messages reached the pipeline, per key."""

    def __init__(self) -> None:
        self.order: dict[str, list[int]] = defaultdict(list)

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        for message in messages:
            key, index = message.body.split(":")
            self.order[key].append(int(index))


async def test_fifo_group_id_is_the_partition_key(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue(fifo=True, ContentBasedDeduplication="true")
    for group in ("g1", "g2"):
        await send_messages(sqs, url, [f"{group}:{i}" for i in range(4)], MessageGroupId=group)
    keys: list[str | None] = []
    order: dict[str, list[int]] = defaultdict(list)

    async def handler(message: Message) -> None:
        keys.append(message.group_id)
        group, index = message.body.split(":")
        order[group].append(int(index))

    server = Server(
        url, handler, client=sqs, processor="partitioned", concurrency=2, deletion_interval_s=0.2, wait_time_seconds=0
    )
    async with server:
        await until(lambda: server.health.deleted == 8)
    assert dict(order) == {"g1": [0, 1, 2, 3], "g2": [0, 1, 2, 3]}
    assert set(keys) == {"g1", "g2"}


async def test_unbounded_runs_every_received_message_at_once(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    bodies = {str(i) for i in range(25)}
    await send_messages(sqs, url, sorted(bodies))
    running: list[str] = []
    finished: list[str] = []
    gate = asyncio.Event()

    async def handler(message: Message) -> None:
        running.append(message.body)
        await gate.wait()
        finished.append(message.body)

    server = Server(url, handler, client=sqs, processor="unbounded", deletion_interval_s=0.5, wait_time_seconds=0)
    async with server:
        # All 25 run at once: none can finish before the gate opens. (By set: SQS, and moto, may deliver a
        # message twice, which adds a handler.)
        await until(lambda: set(running) == bodies)
        assert finished == []
        gate.set()
        await until(lambda: set(finished) == bodies)
    assert await queue_counts(sqs, url) == (0, 0)


async def test_bounded_runs_at_most_concurrency_handlers(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [str(i) for i in range(12)])
    running = 0
    peak = 0

    async def handler(message: Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    server = Server(url, handler, client=sqs, concurrency=3, deletion_interval_s=0.5, wait_time_seconds=0)
    async with server:
        await until(lambda: server.health.deleted == 12)
    assert peak == 3


def test_partitions_are_stable_balanced_and_move_little_when_resized() -> None:
    keys = [f"user-{i}" for i in range(10_000)]
    ten = [partition_of(k, 10) for k in keys]
    assert ten == [partition_of(k, 10) for k in keys]  # stable across calls (and processes: no seed)
    counts = Counter(ten)
    assert set(counts) == set(range(10))
    assert max(counts.values()) < 1.15 * min(counts.values())
    eleven = [partition_of(k, 11) for k in keys]
    moved = sum(a != b for a, b in zip(ten, eleven, strict=True))
    # Consistent hashing moves about 1/11 of the keys; modulo hashing would move about 10/11.
    assert moved < 0.15 * len(keys)
    assert PartitionedProcessor(4).capacity == 4
