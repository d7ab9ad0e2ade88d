"""Processors: how received messages are spread over handler calls."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

import mmh3

from service.aio.channel import Channel
from service.consumer.message import Message
from service.errors import ConfigError

ProcessFn = Callable[[Message], Awaitable[None]]
ProcessorName = Literal["bounded", "unbounded", "partitioned"]
PROCESSOR_NAMES: tuple[ProcessorName, ...] = ("bounded", "unbounded", "partitioned")

# The unbounded processor runs this many messages at once at most, so memory stays bounded.
DEFAULT_UNBOUNDED_MAX_IN_FLIGHT = 1000
# Partitions per worker of the partitioned processor: enough that few keys share a partition.
DEFAULT_PARTITIONS_PER_WORKER = 16


@runtime_checkable
class Processor(Protocol):
    """Calls `process` for every message from `messages` until the channel is closed, then returns.

    `capacity` is how many messages it works on at once; the Server receives no more than that
    (plus a small prefetch), which is what keeps memory bounded.
    """

    @property
    def capacity(self) -> int:
        """Messages processed at once."""
        ...

    async def run(self, messages: Channel[Message], process: ProcessFn) -> None:
        """Process every message of `messages`; return once the channel is closed and all calls returned."""
        ...


class BoundedProcessor:
    """`concurrency` workers share one channel of messages."""

    def __init__(self, concurrency: int) -> None:
        self.capacity = concurrency

    async def run(self, messages: Channel[Message], process: ProcessFn) -> None:
        """Run the workers until the channel is closed."""
        async with asyncio.TaskGroup() as workers:
            for _ in range(self.capacity):
                workers.create_task(_work(messages, process))


class UnboundedProcessor:
    """As many concurrent handler calls as there are messages, at most `max_in_flight` at once.

    Workers are started as they are needed (when a message arrives and none is idle) and kept for the
    next messages, which costs less than a task per message.
    """

    def __init__(self, max_in_flight: int = DEFAULT_UNBOUNDED_MAX_IN_FLIGHT) -> None:
        self.capacity = max_in_flight

    async def run(self, messages: Channel[Message], process: ProcessFn) -> None:
        """Grow the pool of workers on demand until the channel is closed; wait for them all."""
        async with asyncio.TaskGroup() as workers:
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

    A message's key is its `partition_key` attribute, else (on a FIFO queue) its MessageGroupId, else its
    MessageId. A stable hash (jump consistent hashing of a 64-bit mmh3 hash) maps every key to one of
    `concurrency * partitions_per_worker` partitions; a partition's messages run one at a time, in arrival
    order, and any idle worker takes the next partition that has work. So per-key order holds, and neither
    a slow partition nor an uneven spread of keys over the workers holds the other partitions back. A slow
    partition's backlog grows in its own queue; the Server's in-flight limit bounds the total, so a
    partition that stays slow for long ends up pausing receives, never growing memory.
    """

    def __init__(self, concurrency: int, *, partitions_per_worker: int = DEFAULT_PARTITIONS_PER_WORKER) -> None:
        self.capacity = concurrency
        self.partitions = concurrency * partitions_per_worker

    async def run(self, messages: Channel[Message], process: ProcessFn) -> None:
        """Queue each message behind its partition until the channel is closed; the workers run the partitions."""
        backlogs = _Backlogs(self.capacity)
        async with asyncio.TaskGroup() as workers:
            for _ in range(self.capacity):
                workers.create_task(backlogs.work(process))
            try:
                async for message in messages:
                    backlogs.add(partition_of(partition_key(message), self.partitions), message)
            finally:
                backlogs.end_of_input()


class _Backlogs:
    """Partitions with queued messages. A partition is in `ready` at most once, and never while one of its
    messages runs, which is what keeps a partition's messages in order and one at a time."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._queued: dict[int, deque[Message]] = {}
        self._ready: asyncio.Queue[int | None] = asyncio.Queue()
        self._input_ended = False

    def add(self, partition: int, message: Message) -> None:
        queued = self._queued.get(partition)
        if queued is None:
            self._queued[partition] = deque([message])
            self._ready.put_nowait(partition)
        else:
            queued.append(message)

    def end_of_input(self) -> None:
        self._input_ended = True
        self._stop_if_finished()

    async def work(self, process: ProcessFn) -> None:
        while (partition := await self._ready.get()) is not None:
            queued = self._queued[partition]
            try:
                await process(queued[0])
            finally:
                queued.popleft()
                if queued:
                    self._ready.put_nowait(partition)  # behind the partitions already waiting: fair
                else:
                    del self._queued[partition]
                    self._stop_if_finished()

    def _stop_if_finished(self) -> None:
        if self._input_ended and not self._queued:
            for _ in range(self._workers):
                self._ready.put_nowait(None)


def partition_key(message: Message) -> str:
    """The key that decides a message's partition."""
    return message.partition_key or message.group_id or message.message_id


def partition_of(key: str, partitions: int) -> int:
    """Jump consistent hash (Lamping and Veach) of the key's 64-bit mmh3 hash into `partitions` buckets."""
    state: int = mmh3.hash64(key, signed=False)[0]
    bucket, jump = -1, 0
    while jump < partitions:
        bucket = jump
        state = (state * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((state >> 33) + 1)))
    return bucket


def make_processor(processor: ProcessorName | Processor, concurrency: int) -> Processor:
    """A processor by name ("bounded", "unbounded", "partitioned"), or the given object."""
    if isinstance(processor, str):
        if processor == "bounded":
            return BoundedProcessor(concurrency)
        if processor == "unbounded":
            return UnboundedProcessor()
        if processor == "partitioned":
            return PartitionedProcessor(concurrency)
        raise ConfigError("processor", processor, f"one of {', '.join(PROCESSOR_NAMES)}")
    if not isinstance(processor, Processor):
        raise ConfigError("processor", processor, "a processor name or an object with capacity and run()")
    return processor


async def _work(messages: Channel[Message], process: ProcessFn) -> None:
    async for message in messages:
        await process(message)
