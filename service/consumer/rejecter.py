"""The rejecter: messages whose handler raised `Reject`, sent to the dead-letter queue in batches, then deleted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from service.aio.batcher import Batcher
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.errors import MQError, Reject, RejectError, SQSError
from service.sqs.dead_letter import dead_letter_arn, queue_url_for, send_to_dead_letter_queue

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

_log = logging.getLogger("service.consumer")


class Rejecter:
    """Sends rejected messages to the queue's dead-letter queue (SendMessageBatch, transient failures retried).

    A message is handed to `delete` only once SQS stored its copy, so a crash between the two leaves a
    duplicate in the dead-letter queue, never a loss. A send that fails for good reports a RejectError and
    hands the message to `retry` (the retry policy), as does a rejection while the queue has no dead-letter
    queue. The dead-letter queue comes from the queue's attributes, read once at start (`configure`).
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        interval_s: float,
        observer: PipelineObserver,
        on_error: Callable[[MQError], None],
        delete: Callable[[Message], None],
        retry: Callable[[Message], None],
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._observer = observer
        self._on_error = on_error
        self._delete = delete
        self._retry = retry
        self.dead_letter_url: str | None = None
        self._batcher: Batcher[tuple[Message, str]] = Batcher(self._send, max_entries=10, max_wait_s=interval_s)

    @property
    def pending(self) -> int:
        """Rejected messages waiting for their send."""
        return self._batcher.pending

    def configure(self, queue_attributes: Mapping[str, str]) -> None:
        """Take the dead-letter queue from the queue's RedrivePolicy; warn when there is none."""
        arn = dead_letter_arn(queue_attributes)
        self.dead_letter_url = None if arn is None else queue_url_for(self._queue_url, arn)
        if arn is None:
            _log.warning(
                "queue %s has no dead-letter queue (no RedrivePolicy): "
                "a handler's Reject falls back to the retry policy",
                self._queue_url,
            )

    def reject(self, message: Message, rejection: Reject) -> None:
        """Queue `message` for the dead-letter queue (never waits: the pipeline's in-flight limit bounds it)."""
        if self.dead_letter_url is None:
            self._on_error(RejectError(message.message_id, rejection.reason, "the queue has no dead-letter queue"))
            self._retry(message)
            return
        self._batcher.put_nowait((message, rejection.reason))

    async def run(self) -> None:
        """Send batches until closed; flushes everything before returning."""
        await self._batcher.run()

    def close(self) -> None:
        """Accept no more rejections and flush."""
        self._batcher.close()

    async def _send(self, batch: list[tuple[Message, str]]) -> None:
        url = self.dead_letter_url
        assert url is not None  # only queued when there is one
        result = await send_to_dead_letter_queue(self._client, url, [(m.as_received, reason) for m, reason in batch])
        stored = [message for i, (message, _) in enumerate(batch) if str(i) in result.succeeded]
        if stored:
            self._observer.rejected(stored)
        for message in stored:
            self._delete(message)
        for i, (message, reason) in enumerate(batch):
            error: SQSError | None = result.failed.get(str(i))
            if str(i) not in result.succeeded:
                problem = f"the send to the dead-letter queue {url} failed: {error}"
                self._on_error(RejectError(message.message_id, reason, problem, error))
                self._retry(message)
