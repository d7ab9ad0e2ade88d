"""A message move done by the client, where the server has no StartMessageMoveTask (moto, fauxqs).

Batch by batch: receive from the source (the dead-letter queue), SendMessageBatch to the destination with the
same body and attributes (FIFO: the same group, and the message's id as deduplication id), then
DeleteMessageBatch of exactly the entries whose send succeeded. A message is never deleted before the
destination stored it, so a crash or a fault mid-move loses nothing; it may leave one batch in both queues.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.errors import SQSError
from service.sqs.batch import call_batch
from service.sqs.dead_letter import copy_entry
from service.sqs.queues import sqs_call
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

MAX_BATCH = 10
# How long a received message stays invisible in the source while its batch is moved: a crash mid-batch
# makes it visible again after this, to be moved by the next redrive.
DEFAULT_MOVE_VISIBILITY_S = 30
# Receives in a row that found nothing before the source counts as empty.
EMPTY_RECEIVES = 2


@dataclass
class MoveCounts:
    """Progress of one move."""

    moved: int = 0
    to_move: int = 0


class Pacer:
    """Spaces batches so that no more than `per_s` messages go per second (None: no limit)."""

    def __init__(self, per_s: float | None) -> None:
        self.per_s = per_s
        self._next_at = time.monotonic()

    def batch_size(self) -> int:
        """How many messages one batch may hold at this rate."""
        return MAX_BATCH if self.per_s is None else max(1, min(MAX_BATCH, math.floor(self.per_s)))

    async def wait(self, count: int) -> None:
        """Wait until `count` more messages may go."""
        if self.per_s is None:
            return
        now = time.monotonic()
        if self._next_at > now:
            await asyncio.sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + count / self.per_s


class ClientSideMove:
    """Moves up to `counts.to_move` messages from `source_url` to `destination_url`, until the source is empty
    or `stop()` returns True (checked between batches, so a stop never leaves a batch half moved)."""

    def __init__(
        self,
        client: SQSClient,
        source_url: str,
        destination_url: str,
        *,
        per_s: float | None = None,
        visibility_timeout_s: int = DEFAULT_MOVE_VISIBILITY_S,
    ) -> None:
        self._client = client
        self._source = source_url
        self._destination = destination_url
        self._fifo = is_fifo(destination_url)
        self._pacer = Pacer(per_s)
        self._visibility_timeout_s = visibility_timeout_s

    async def run(self, counts: MoveCounts, stop: Callable[[], bool]) -> None:
        """Move batches until done; raises SQSError when a send or a delete failed for good."""
        empty = 0
        while counts.moved < counts.to_move and empty < EMPTY_RECEIVES and not stop():
            size = min(self._pacer.batch_size(), counts.to_move - counts.moved)
            await self._pacer.wait(size)
            if stop():
                return
            try:
                moved = await self.move_batch(size)
            except MoveFailed as failed:
                counts.moved += failed.moved
                raise
            empty = empty + 1 if moved == 0 else 0
            counts.moved += moved

    async def move_batch(self, size: int) -> int:
        """Receive up to `size` messages and move them; returns how many were moved."""
        messages = await self._receive(size)
        if not messages:
            return 0
        entries = {str(i): message for i, message in enumerate(messages)}
        sent = await call_batch(
            lambda batch: self._client.send_message_batch(QueueUrl=self._destination, Entries=batch),  # type: ignore[arg-type]
            [self._send_entry(entry_id, message) for entry_id, message in entries.items()],
            operation="SendMessageBatch",
        )
        if sent.failed:
            await self._hand_back([entries[entry_id] for entry_id in sent.failed])
        deletions = [
            {"Id": entry_id, "ReceiptHandle": entries[entry_id]["ReceiptHandle"]} for entry_id in sent.succeeded
        ]
        deleted = await call_batch(
            lambda batch: self._client.delete_message_batch(QueueUrl=self._source, Entries=batch),  # type: ignore[arg-type]
            deletions,
            operation="DeleteMessageBatch",
        )
        failure = next(iter(sent.failed.values()), None) or next(iter(deleted.failed.values()), None)
        if failure is not None:
            raise MoveFailed(len(sent.succeeded), failure)
        return len(sent.succeeded)

    async def _receive(self, size: int) -> list[dict[str, Any]]:
        response = await sqs_call(
            "ReceiveMessage",
            self._client.receive_message(
                QueueUrl=self._source,
                MaxNumberOfMessages=size,
                VisibilityTimeout=self._visibility_timeout_s,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ),
        )
        unique = {m["MessageId"]: m for m in response.get("Messages", [])}  # a receive may repeat a message
        return list(unique.values())

    def _send_entry(self, entry_id: str, message: dict[str, Any]) -> dict[str, Any]:
        # The original id as deduplication id: a batch sent twice (a retry after a lost answer) is stored once.
        return copy_entry(entry_id, message, fifo=self._fifo, default_group="redrive")

    async def _hand_back(self, messages: list[dict[str, Any]]) -> None:
        """Make unsent messages visible in the source again at once (failing that, after the timeout)."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ]
        await call_batch(
            lambda batch: self._client.change_message_visibility_batch(QueueUrl=self._source, Entries=batch),  # type: ignore[arg-type]
            entries,
            operation="ChangeMessageVisibilityBatch",
        )


class MoveFailed(Exception):
    """A batch could not be moved completely; `moved` of its messages were (sent and deleted or not)."""

    def __init__(self, moved: int, error: SQSError) -> None:
        super().__init__(str(error))
        self.moved = moved
        self.error = error
