"""Visibility changes: retry delays and hand-backs in batches, heartbeat extensions, SQS's 12-hour cap."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Literal

from service.aio.batcher import Batcher
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.errors import MQError, VisibilityError
from service.sqs.batch import call_batch, error_from_exception, is_stale_handle

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

Reason = Literal["retry", "release", "extend"]
_OPERATION = "ChangeMessageVisibilityBatch"
# Retry delays and hand-backs wait at most this long for companions in a batch.
_CHANGE_BATCH_WAIT_S = 0.2
_log = logging.getLogger("service.consumer")


class Visibility:
    """Owns every visibility change of one queue's messages; each change is capped by `Message.max_visibility_s`.

    It is also the one writer of a message's lease state: when an extension is refused for a stale receipt
    handle, or the heartbeat finds a deadline passed with no successful extension, the message's lease is
    lost (`lose_lease`).
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        visibility_timeout: int,
        observer: PipelineObserver,
        on_error: Callable[[MQError], None],
        outstanding: Callable[[], Collection[Message]] = tuple,
        on_lease_lost: Callable[[Message], None] | None = None,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._visibility_timeout = visibility_timeout
        self._observer = observer
        self._on_error = on_error
        self._outstanding = outstanding  # the messages still in the pipeline: only those are extended
        self._on_lease_lost = on_lease_lost
        # One batch at a time, so changes to one message reach SQS in the order they were made
        # (an extension must never land after that message's hand-back).
        self._batcher: Batcher[tuple[Message, int, Reason]] = Batcher(
            self._change_batch, max_entries=10, max_wait_s=_CHANGE_BATCH_WAIT_S, max_in_flight=1
        )

    def schedule(self, message: Message, seconds: int, reason: Reason) -> None:
        """Queue a change for the next batch (never waits: the pipeline's in-flight limit bounds it)."""
        self._batcher.put_nowait((message, min(max(seconds, 0), message.max_visibility_s()), reason))

    async def change_now(self, message: Message, seconds: int) -> None:
        """Change one message's visibility at once (Message.change_visibility)."""
        seconds = min(max(seconds, 0), message.max_visibility_s())
        asked_at = time.monotonic()
        try:
            await self._client.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as exc:
            raise VisibilityError(message.message_id, error_from_exception(exc, "ChangeMessageVisibility")) from exc
        message.visibility_deadline = asked_at + seconds

    def lose_lease(self, message: Message, reason: str) -> None:
        """Mark the message's lease lost, once: logged with its id, told to the observers and `on_lease_lost`."""
        if not message._lose_lease():  # the one writer of lease state
            return
        _log.warning("lease lost on message %s: %s", message.message_id, reason)
        self._observer.lease_lost(message, reason)
        if self._on_lease_lost is not None:
            self._on_lease_lost(message)

    async def run(self) -> None:
        """Send change batches until closed; flushes everything before returning."""
        await self._batcher.run()

    async def flush(self) -> None:
        """Send the changes queued so far now; return once SQS answered them."""
        await self._batcher.flush()

    def close(self) -> None:
        """Accept no more changes and flush."""
        self._batcher.close()

    async def heartbeat(self) -> None:
        """Extend messages about to become visible again while they wait or run (runs until cancelled).

        Every `visibility_timeout / 8` seconds, messages with less than half their timeout left get a
        fresh `visibility_timeout`, so a long handler is not redelivered to another consumer meanwhile.
        The short tick leaves an extension at least 3/8 of the timeout to reach SQS (a slow answer on a
        busy host must not cost the lease); the half threshold keeps extensions to about one per half
        timeout. A message whose deadline passed with no successful extension has lost its lease.
        """
        tick_s = max(0.1, self._visibility_timeout / 8)
        threshold_s = self._visibility_timeout / 2
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            due_by = now + threshold_s
            for message in list(self._outstanding()):
                if message.lease_lost:
                    continue  # its receipt handle is no longer honoured: extending it is useless
                if message.visibility_deadline <= now:
                    self.lose_lease(message, "its visibility deadline passed with no successful extension")
                elif message.visibility_deadline <= due_by:
                    self.schedule(message, self._visibility_timeout, "extend")

    async def _change_batch(self, batch: list[tuple[Message, int, Reason]]) -> None:
        # The last change of a message wins; extensions of messages settled meanwhile are dropped.
        outstanding = self._outstanding()
        latest = {change[0].receipt_handle: change for change in batch}
        changes = [c for c in latest.values() if c[2] != "extend" or c[0] in outstanding]
        if not changes:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
            for i, (m, seconds, _) in enumerate(changes)
        ]
        asked_at = time.monotonic()
        result = await call_batch(self._call, entries, operation=_OPERATION)
        released: list[Message] = []
        for i, (message, seconds, reason) in enumerate(changes):
            if str(i) not in result.succeeded:
                error = result.failed[str(i)]
                if not is_stale_handle(error):
                    self._on_error(VisibilityError(message.message_id, error))
                elif reason == "extend" or message.lease_lost:
                    self.lose_lease(message, f"SQS refused to extend its visibility ({error.code})")
                else:
                    self._on_error(VisibilityError(message.message_id, error))
                continue
            message.visibility_deadline = asked_at + seconds
            if reason == "release":
                released.append(message)
            elif reason == "extend":
                self._observer.visibility_extended([message], seconds)
        if released:
            self._observer.released(released)

    async def _call(self, entries: list[dict[str, Any]]) -> Any:
        return await self._client.change_message_visibility_batch(
            QueueUrl=self._queue_url,
            Entries=entries,  # type: ignore[arg-type]
        )
