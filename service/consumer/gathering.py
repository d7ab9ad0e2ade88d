"""The batching processor: gathers received messages into batches for batch handlers (see `batching.batch`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from service.aio.channel import Channel
from service.consumer.batching import BatchHandler
from service.consumer.fifo import FailedGroups
from service.consumer.message import Message


class BatchSteps(Protocol):
    """What the batching processor gets from the pipeline."""

    async def process_batch(self, handler: BatchHandler, batch: list[Message]) -> set[Message]:
        """Run one batch and settle each message; the messages that succeeded."""
        ...

    def release(self, message: Message, delay_s: int = 0) -> None:
        """Hand a message back unhandled."""
        ...


class BatchingProcessor:
    """Gathers messages per batch handler and runs up to `concurrency` batches at once.

    A handler's batch starts when it holds `max_messages`, when its oldest message has waited `max_wait_s`,
    or, with `max_wait_s` 0, as soon as what one receive brought is in. On a FIFO queue a message group is in at
    most one running batch, in order; when a message of a group does not succeed, the messages of that group
    gathered meanwhile are handed back (visible again at once) so SQS redelivers the group in its order.
    """

    def __init__(
        self,
        concurrency: int,
        handler_for: Callable[[Message], BatchHandler],
        *,
        max_messages: int,
        fifo: bool = False,
    ) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency * max_messages
        self.fifo = fifo
        self._handler_for = handler_for

    async def run(self, messages: Channel[Message], steps: BatchSteps) -> None:
        """Gather and run batches until the channel is closed and every batch returned."""
        batches = _Batches(self, steps.process_batch, steps.release)
        async with asyncio.TaskGroup() as group:
            group.create_task(batches.dispatch(group))
            await batches.gather(messages)


class _Batches:
    def __init__(
        self,
        processor: BatchingProcessor,
        process: Callable[[BatchHandler, list[Message]], Awaitable[set[Message]]],
        release: Callable[[Message], None],
    ) -> None:
        self._processor = processor
        self._handler_for = processor._handler_for
        self._process = process
        self._release = release
        # Per handler, the gathered messages, oldest first (their `received_at` opens the batching window).
        self._pending: dict[BatchHandler, deque[Message]] = {}
        self._busy_groups: set[str] = set()
        self._failed = FailedGroups()
        self._running = 0
        self._ended = False
        self._wake = asyncio.Event()

    async def gather(self, messages: Channel[Message]) -> None:
        try:
            async for message in messages:
                if self._failed.blocks(message):
                    self._release(message)  # received before an earlier message of its group failed
                else:
                    handler = self._handler_for(message)
                    pending = self._pending.get(handler)
                    if pending is None:
                        pending = self._pending[handler] = deque()
                    pending.append(message)
                if not len(messages):  # what the receive brought is all in: the dispatcher may look now
                    self._failed.caught_up()
                    self._wake.set()
        finally:
            self._ended = True
            self._wake.set()

    async def dispatch(self, group: asyncio.TaskGroup) -> None:
        while True:
            self._start_ready(group, time.monotonic())
            if self._ended and not self._pending and self._running == 0:
                return
            self._wake.clear()
            deadline = self._next_window() if self._running < self._processor.concurrency else None
            try:
                async with asyncio.timeout_at(None if deadline is None else _loop_time(deadline)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _start_ready(self, group: asyncio.TaskGroup, now: float) -> None:
        for handler in list(self._pending):
            while self._running < self._processor.concurrency:
                pending = self._pending.get(handler)
                if not pending or not (
                    self._ended
                    or len(pending) >= handler.max_messages
                    or now >= pending[0].received_at + handler.max_wait_s
                ):
                    break
                batch = self._take(handler, pending)
                if not batch:
                    break  # every gathered message belongs to a group whose batch is running
                self._running += 1
                group.create_task(self._run(handler, batch))

    def _take(self, handler: BatchHandler, pending: deque[Message]) -> list[Message]:
        limit = handler.max_messages
        # Without a window, a batch is what one receive brought (its messages share their `received_at`).
        receive = pending[0].received_at if handler.max_wait_s == 0 else None
        if not self._processor.fifo:
            batch: list[Message] = []
            while pending and len(batch) < limit and (receive is None or pending[0].received_at == receive):
                batch.append(pending.popleft())
        else:
            batch, kept = [], deque[Message]()
            for message in pending:
                group_id = message.group_id
                if (
                    len(batch) < limit
                    and (group_id is None or group_id not in self._busy_groups)
                    and (receive is None or message.received_at == receive)
                ):
                    batch.append(message)
                else:
                    kept.append(message)
            self._busy_groups.update(m.group_id for m in batch if m.group_id is not None)
            pending.clear()
            pending.extend(kept)
        if not pending:
            del self._pending[handler]
        return batch

    def _next_window(self) -> float | None:
        deadlines = [pending[0].received_at + handler.max_wait_s for handler, pending in self._pending.items()]
        return min(deadlines) if deadlines else None

    async def _run(self, handler: BatchHandler, batch: list[Message]) -> None:
        succeeded: set[Message] = set()
        try:
            succeeded = await self._process(handler, batch)
        finally:
            self._running -= 1
            if self._processor.fifo:
                self._settle_groups(batch, succeeded)
            self._wake.set()

    def _settle_groups(self, batch: list[Message], succeeded: set[Message]) -> None:
        groups = {m.group_id for m in batch if m.group_id is not None}
        self._busy_groups.difference_update(groups)
        failed = {m.group_id for m in batch if m not in succeeded and m.group_id is not None}
        if not failed:
            return
        # A group's later messages must not run before its failed one: hand them back, in their order.
        for group_id in failed:
            self._failed.failed(group_id)
        for handler, pending in list(self._pending.items()):
            kept = deque(message for message in pending if message.group_id not in failed)
            for message in pending:
                if message.group_id in failed:
                    self._release(message)
            if kept:
                self._pending[handler] = kept
            else:
                del self._pending[handler]


def _loop_time(monotonic: float) -> float:
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())
