"""Processors: how received messages are spread over handler calls."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

import mmh3

from service.aio.channel import Channel
from service.consumer.fifo import FailedGroups
from service.consumer.groups import GroupCap
from service.consumer.message import Message
from service.consumer.outcome import Outcome, Steps
from service.errors import ConfigError
from service.sqs.urls import is_fifo

ProcessFn = Callable[[Message], Awaitable[Outcome]]
ProcessorName = Literal["auto", "bounded", "unbounded", "partitioned"]
PROCESSOR_NAMES: tuple[ProcessorName, ...] = ("auto", "bounded", "unbounded", "partitioned")
ORDERED_PROCESSORS = ("auto", "partitioned")
"""The processors that keep a FIFO queue's group order (auto is partitioned there)."""

# The unbounded processor runs this many messages at once at most, so memory stays bounded.
DEFAULT_UNBOUNDED_MAX_IN_FLIGHT = 1000
# Partitions per worker of the partitioned processor: enough that few keys share a partition.
DEFAULT_PARTITIONS_PER_WORKER = 16


@runtime_checkable
class Processor(Protocol):
    """Calls `steps.process` for every message from `messages` until the channel is closed, then returns.

    `capacity` is how many messages it works on at once; the Server receives no more than that
    (plus a small prefetch), which is what keeps memory bounded. `steps.process` reports each message's
    outcome; a processor that decides not to run a message hands it back with `steps.release`.
    """

    @property
    def capacity(self) -> int:
        """Messages processed at once."""
        ...

    async def run(self, messages: Channel[Message], steps: Steps) -> None:
        """Process every message of `messages`; return once the channel is closed and all calls returned."""
        ...


class GroupShare:
    """`max_in_flight_per_group` for the bounded and unbounded processors (None: no cap, no cost)."""

    def __init__(self, max_in_flight_per_group: int | None, hold_back_s: int) -> None:
        self.max_in_flight_per_group = max_in_flight_per_group
        self.hold_back_s = hold_back_s

    def gate(self, capacity: int, steps: Steps) -> GroupCap | None:
        """The cap between the channel and the workers, or None without a cap."""
        if self.max_in_flight_per_group is None:
            return None
        return GroupCap(self.max_in_flight_per_group, capacity, steps, hold_back_s=self.hold_back_s)


_NO_SHARE = GroupShare(None, 0)


class BoundedProcessor:
    """`concurrency` workers share one channel of messages (with a cap per group when one is set)."""

    def __init__(self, concurrency: int, *, share: GroupShare = _NO_SHARE) -> None:
        self.capacity = concurrency
        self.share = share

    async def run(self, messages: Channel[Message], steps: Steps) -> None:
        """Run the workers until the channel is closed."""
        async with asyncio.TaskGroup() as workers:
            messages, process = _through_cap(self.share, self.capacity, messages, steps, workers)
            for _ in range(self.capacity):
                workers.create_task(_work(messages, process))


class UnboundedProcessor:
    """As many concurrent handler calls as there are messages, at most `max_in_flight` at once.

    Workers are started as they are needed (when a message arrives and none is idle) and kept for the
    next messages, which costs less than a task per message.
    """

    def __init__(self, max_in_flight: int = DEFAULT_UNBOUNDED_MAX_IN_FLIGHT, *, share: GroupShare = _NO_SHARE) -> None:
        self.capacity = max_in_flight
        self.share = share

    async def run(self, messages: Channel[Message], steps: Steps) -> None:
        """Grow the pool of workers on demand until the channel is closed; wait for them all."""
        async with asyncio.TaskGroup() as workers:
            messages, process = _through_cap(self.share, self.capacity, messages, steps, workers)
            pool = _Pool(workers, messages, process, self.capacity)
            pool.grow()


class _Pool:
    def __init__(self, workers: asyncio.TaskGroup, messages: Channel[Message], process: ProcessFn, limit: int) -> None:
        self._workers = workers
        self._messages = messages
        self._process = process
        self._limit = limit
        self._size = 0
        self._idle = 0

    def grow(self) -> None:
        self._size += 1
        self._workers.create_task(self._work())

    async def _work(self) -> None:
        while True:
            self._idle += 1
            try:
                message = await self._messages.get()
            except StopAsyncIteration:
                return
            finally:
                self._idle -= 1
            if self._idle == 0 and self._size < self._limit:
                self.grow()  # keep one worker waiting for the next message
            await self._process(message)


class PartitionedProcessor:
    """`concurrency` workers; messages with the same key run one at a time, in the order they arrived.

    A message's key is, on a FIFO queue, its MessageGroupId; elsewhere its `partition_key` attribute, else
    its MessageGroupId, else its MessageId. A stable hash (jump consistent hashing of a 64-bit mmh3 hash)
    maps every key to one of `concurrency * partitions_per_worker` partitions; a partition's messages run
    one at a time, in arrival order, and any idle worker takes the next partition that has work. So per-key
    order holds, and neither a slow partition nor an uneven spread of keys over the workers holds the other
    partitions back. A slow partition's backlog grows in its own queue; the Server's in-flight limit bounds
    the total, so a partition that stays slow for long ends up pausing receives, never growing memory.

    On a FIFO queue, order also holds under failure: when a message does not succeed (its outcome is
    redelivered), every later message of its group that the pod holds (queued in the partition, or received
    before the failure and still on its way in) is handed back unhandled, visible at once, so SQS delivers
    the group again in its order, the failed message first, once its retry delay has passed.
    """

    def __init__(self, concurrency: int, *, partitions_per_worker: int = DEFAULT_PARTITIONS_PER_WORKER) -> None:
        self.capacity = concurrency
        self.partitions = concurrency * partitions_per_worker

    async def run(self, messages: Channel[Message], steps: Steps) -> None:
        """Queue each message behind its partition until the channel is closed; the workers run the partitions."""
        backlogs = _Backlogs(self.capacity, steps)
        async with asyncio.TaskGroup() as workers:
            for _ in range(self.capacity):
                workers.create_task(backlogs.work())
            try:
                async for message in messages:
                    key = partition_key(message)
                    backlogs.add(partition_of(key, self.partitions), key, message)
                    if not messages:
                        backlogs.failed.caught_up()
            finally:
                backlogs.end_of_input()


class _Backlogs:
    """Partitions with queued messages. A partition is in `ready` at most once, and never while one of its
    messages runs, which is what keeps a partition's messages in order and one at a time."""

    def __init__(self, workers: int, steps: Steps) -> None:
        self._workers = workers
        self._steps = steps
        self._queued: dict[int, deque[tuple[str, Message]]] = {}
        self._ready: asyncio.Queue[int | None] = asyncio.Queue()
        self._input_ended = False
        self.failed = FailedGroups()  # on a FIFO queue a message's key is its group

    def add(self, partition: int, key: str, message: Message) -> None:
        if self.failed.blocks(message):
            self._steps.release(message)  # received before an earlier message of its group failed
            return
        queued = self._queued.get(partition)
        if queued is None:
            self._queued[partition] = deque([(key, message)])
            self._ready.put_nowait(partition)
        else:
            queued.append((key, message))

    def end_of_input(self) -> None:
        self._input_ended = True
        self._stop_if_finished()

    async def work(self) -> None:
        while (partition := await self._ready.get()) is not None:
            queued = self._queued[partition]
            key, message = queued[0]
            outcome = Outcome.RELEASED
            try:
                outcome = await self._steps.process(message)
            finally:
                queued.popleft()
                if outcome.redelivered and is_fifo(message.queue_url):
                    self._hand_back_group(queued, key)
                if queued:
                    self._ready.put_nowait(partition)  # behind the partitions already waiting: fair
                else:
                    del self._queued[partition]
                    self._stop_if_finished()

    def _hand_back_group(self, queued: deque[tuple[str, Message]], key: str) -> None:
        """A FIFO group's message will come back: its later messages must not run before it."""
        self.failed.failed(key)
        kept = [item for item in queued if item[0] != key]
        for item_key, message in queued:
            if item_key == key:
                self._steps.release(message)
        queued.clear()
        queued.extend(kept)

    def _stop_if_finished(self) -> None:
        if self._input_ended and not self._queued:
            for _ in range(self._workers):
                self._ready.put_nowait(None)


def partition_key(message: Message) -> str:
    """The key that decides a message's partition: on a FIFO queue its group, so no attribute splits a group."""
    group = message.group_id
    if group is not None and is_fifo(message.queue_url):
        return group
    return message.partition_key or group or message.message_id


def partition_of(key: str, partitions: int) -> int:
    """Jump consistent hash (Lamping and Veach) of the key's 64-bit mmh3 hash into `partitions` buckets."""
    state: int = mmh3.hash64(key, signed=False)[0]
    bucket, jump = -1, 0
    while jump < partitions:
        bucket = jump
        state = (state * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((state >> 33) + 1)))
    return bucket


def make_processor(
    processor: ProcessorName | Processor,
    concurrency: int,
    *,
    fifo: bool = False,
    share: GroupShare = _NO_SHARE,
) -> Processor:
    """A processor by name, or the given object; "auto" is partitioned on a FIFO queue, else bounded.

    `share` (a cap per group) applies to the bounded and unbounded processors.
    """
    if isinstance(processor, str):
        if processor == "auto":
            processor = "partitioned" if fifo else "bounded"
        if processor == "bounded":
            return BoundedProcessor(concurrency, share=share)
        if processor == "unbounded":
            return UnboundedProcessor(share=share)
        if processor == "partitioned":
            return PartitionedProcessor(concurrency)
        raise ConfigError("processor", processor, f"one of {', '.join(PROCESSOR_NAMES)}")
    if not isinstance(processor, Processor):
        raise ConfigError("processor", processor, "a processor name or an object with capacity and run()")
    return processor


def _through_cap(
    share: GroupShare, capacity: int, messages: Channel[Message], steps: Steps, workers: asyncio.TaskGroup
) -> tuple[Channel[Message], ProcessFn]:
    """The channel the workers read and the step they run: with a cap per group, the cap's (fed by a task in
    `workers`); without one, the received messages and the pipeline's step, at no cost."""
    gate = share.gate(capacity, steps)
    if gate is None:
        return messages, steps.process
    workers.create_task(gate.feed(messages))
    return gate.ready, gate.process


async def _work(messages: Channel[Message], process: ProcessFn) -> None:
    async for message in messages:
        await process(message)
