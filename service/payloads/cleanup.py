"""Deletes the S3 payload objects of messages once SQS has deleted the messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from service.consumer.message import Message, S3Payload
from service.consumer.observer import PipelineObserver
from service.payloads.observer import PayloadObserver
from service.payloads.pointer import PayloadError
from service.payloads.resolve import ResolvedPayload
from service.payloads.store import S3Store
from service.sqs.envelopes import SnsEnvelope

DEFAULT_MAX_PENDING = 10_000
DEFAULT_CLEANUP_CONCURRENCY = 4
DEFAULT_CLEANUP_FLUSH_TIMEOUT_S = 10.0

_log = logging.getLogger("service.payloads")


class PayloadCleanup(PipelineObserver):
    """A PipelineObserver that deletes a message's payload object after SQS deleted the message.

    SQS first, then S3: a message whose SQS delete failed comes back with its payload intact. A failed S3
    delete never fails the message: the object stays behind as an orphan (logged and reported through
    `PayloadObserver.orphaned`), for an S3 lifecycle rule to expire. A rejected message's object is kept:
    its copy in the dead-letter queue points at it. The `deleted` hook only queues the
    object (at most `max_pending`; beyond that, orphans); `concurrency` workers of the task that `start`
    creates delete them. `shutdown(timeout_s)` flushes the queue within `timeout_s`; what is left is orphaned.
    """

    def __init__(
        self,
        store: S3Store,
        *,
        observer: PayloadObserver | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        concurrency: int = DEFAULT_CLEANUP_CONCURRENCY,
    ) -> None:
        self._store = store
        self._observer = observer or PayloadObserver()
        self._queue: asyncio.Queue[S3Payload] = asyncio.Queue(max_pending)
        self._concurrency = concurrency
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self._kept: set[str] = set()  # ids of rejected messages, until their delete is reported
        self.counts = dict.fromkeys(("deleted", "orphaned"), 0)

    async def start(self) -> None:
        """Start the task that deletes queued payload objects."""
        if self._runner is not None:
            raise RuntimeError("the payload cleanup was already started")
        self._runner = asyncio.create_task(self._run(), name="mq-payload cleanup")

    async def shutdown(self, timeout_s: float = DEFAULT_CLEANUP_FLUSH_TIMEOUT_S) -> None:
        """Take no more objects, delete the queued ones within `timeout_s`, orphan the rest, stop."""
        self._closed = True
        if self._runner is None:
            self._orphan_queued()
            return
        flushed = asyncio.ensure_future(self._queue.join())
        try:
            await asyncio.wait(
                [flushed, self._runner], timeout=max(0.0, timeout_s), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            flushed.cancel()
            self._runner.cancel()
            await asyncio.wait([self._runner])
        self._orphan_queued()

    def rejected(self, messages: Sequence[Message]) -> None:
        """Keep the payload objects of these messages: their copies in the dead-letter queue point at them."""
        self._kept.update(message.message_id for message in messages if message.s3_payload is not None)

    def deleted(self, messages: Sequence[Message]) -> None:
        """Queue the payload objects of these deleted messages (not those of rejected ones)."""
        for message in messages:
            kept = self._keep(message)  # forgets the message id either way
            # A payload that came through SNS belongs to the topic's publisher: every subscription reads it.
            if message.s3_payload is not None and not kept and not isinstance(message.envelope, SnsEnvelope):
                self._queue_delete(message.s3_payload)

    def _keep(self, message: Message) -> bool:
        if message.message_id in self._kept:
            self._kept.discard(message.message_id)
            return True
        return False

    def _queue_delete(self, payload: S3Payload) -> None:
        if self._closed:
            self._orphaned(payload, None, "the payload cleanup had stopped")
            return
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self._orphaned(payload, None, f"{self._queue.maxsize} payload deletions were already waiting")

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for number in range(self._concurrency):
                group.create_task(self._work(), name=f"mq-payload cleanup {number}")

    async def _work(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                # In the context the payload was read in, so the delete's span sits under the message's span.
                context = payload.context if isinstance(payload, ResolvedPayload) else None
                await asyncio.create_task(self._delete(payload), context=context)
            finally:
                self._queue.task_done()

    async def _delete(self, payload: S3Payload) -> None:
        try:
            await self._store.delete(payload.bucket, payload.key)
        except PayloadError as error:
            self._orphaned(payload, error, str(error))
        else:
            self.counts["deleted"] += 1
            self._observer.deleted(payload)

    def _orphan_queued(self) -> None:
        while not self._queue.empty():
            self._orphaned(self._queue.get_nowait(), None, "the payload cleanup stopped before deleting it")
            self._queue.task_done()

    def _orphaned(self, payload: S3Payload, error: PayloadError | None, reason: str) -> None:
        self.counts["orphaned"] += 1
        _log.warning(
            "payload object left in S3 (its message was deleted): %s",
            reason,
            extra={"bucket": payload.bucket, "key": payload.key},
        )
        self._observer.orphaned(payload, error)
