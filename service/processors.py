"""Processors: how received messages are spread over handler calls."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Literal, Protocol, runtime_checkable

import anyio
import mmh3
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .message import Message

ProcessFn = Callable[[Message], Awaitable[None]]
ProcessorName = Literal["bounded", "unbounded", "partitioned"]
PROCESSOR_NAMES: tuple[ProcessorName, ...] = ("bounded", "unbounded", "partitioned")

# The unbounded processor starts a task per message; this many at most, so memory stays bounded.
DEFAULT_UNBOUNDED_MAX_IN_FLIGHT = 1000


@runtime_checkable
class Processor(Protocol):
    """Calls `process` for every message from `messages` until the stream ends, then returns.

    `capacity` is how many messages it works on at once; the Server receives no more than that
    (plus a small prefetch), which is what keeps memory bounded.
    """

    @property
    def capacity(self) -> int:
        """Messages processed at once."""
        ...

    async def run(self, messages: MemoryObjectReceiveStream[Message], process: ProcessFn) -> None:
        """Process every message of `messages`; return once the stream is closed and all calls returned."""
        ...


class BoundedProcessor:
    """`concurrency` workers share one stream of messages."""

    def __init__(self, concurrency: int) -> None:
        self.capacity = concurrency

    async def run(self, messages: MemoryObjectReceiveStream[Message], process: ProcessFn) -> None:
        """Run the workers until the stream ends."""
        async with asyncio.TaskGroup() as workers:
            for _ in range(self.capacity):
                workers.create_task(_work(messages, process))


class UnboundedProcessor:
    """A task per message, at most `max_in_flight` at once."""

    def __init__(self, max_in_flight: int = DEFAULT_UNBOUNDED_MAX_IN_FLIGHT) -> None:
        self.capacity = max_in_flight

    async def run(self, messages: MemoryObjectReceiveStream[Message], process: ProcessFn) -> None:
        """Start a task for each message until the stream ends; wait for them all."""
        async with asyncio.TaskGroup() as tasks:
            async for message in messages:
                tasks.create_task(_call(process, message))


class PartitionedProcessor:
    """`concurrency` workers, each with its own queue; messages with the same key go to the same worker.

    A message's key is its `partition_key` attribute, else (on a FIFO queue) its MessageGroupId, else its
    MessageId. Keys map to workers by jump consistent hashing of a 64-bit mmh3 hash, so per-key order
    holds and changing `concurrency` moves few keys. The dispatcher never waits on a busy worker: a slow
    partition's backlog grows in its own queue while the others go on; the Server's in-flight limit bounds
    the total, so a partition that stays slow for long ends up pausing receives, never memory growth.
    """

    def __init__(self, concurrency: int) -> None:
        self.capacity = concurrency

    async def run(self, messages: MemoryObjectReceiveStream[Message], process: ProcessFn) -> None:
        """Dispatch messages to their partition's worker until the stream ends."""
        streams = [anyio.create_memory_object_stream[Message](math.inf) for _ in range(self.capacity)]
        with ExitStack() as closing:
            async with asyncio.TaskGroup() as workers:
                for _, receive in streams:
                    closing.enter_context(receive)
                    workers.create_task(_work(receive, process))
                await self._dispatch(messages, [send for send, _ in streams])

    async def _dispatch(
        self, messages: MemoryObjectReceiveStream[Message], partitions: list[MemoryObjectSendStream[Message]]
    ) -> None:
        with ExitStack() as closing:  # closing the send streams ends the workers' loops
            for partition in partitions:
                closing.enter_context(partition)
            async for message in messages:
                partitions[partition_of(partition_key(message), len(partitions))].send_nowait(message)


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
        raise ValueError(f"processor: {processor!r} is not allowed; expected one of {', '.join(PROCESSOR_NAMES)}")
    if not isinstance(processor, Processor):
        raise TypeError(f"processor: {processor!r} does not implement the Processor protocol")
    return processor


async def _call(process: ProcessFn, message: Message) -> None:
    await process(message)


async def _work(messages: MemoryObjectReceiveStream[Message], process: ProcessFn) -> None:
    async for message in messages:
        await process(message)
