"""The deleter: batched DeleteMessageBatch calls for handled messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.aio.batcher import Batcher
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.errors import DeleteError, MQError
from service.sqs.batch import call_batch, is_stale_handle

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

_OPERATION = "DeleteMessageBatch"


class Deleter:
    """Deletes handled messages in batches of `batch_max_messages`, or when the oldest has waited `interval_s`.

    Failed entries that SQS marks as transient are retried with backoff. A receipt handle SQS no longer
    honours means the message's lease was lost (`lose_lease`: counted as such, not as an error); the other
    refusals go to `on_error` as DeleteError. Either way the message will be received and handled again.
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        batch_max_messages: int,
        interval_s: float,
        observer: PipelineObserver,
        on_error: Callable[[MQError], None],
        lose_lease: Callable[[Message, str], None] | None = None,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._observer = observer
        self._on_error = on_error
        self._lose_lease = lose_lease
        self._batcher: Batcher[Message] = Batcher(self._delete, max_entries=batch_max_messages, max_wait_s=interval_s)

    @property
    def pending(self) -> int:
        """Handled messages waiting for their delete call."""
        return self._batcher.pending

    async def put(self, message: Message) -> None:
        """Queue a handled message for deletion (waits while the delete backlog is full)."""
        await self._batcher.put(message)

    def put_nowait(self, message: Message) -> None:
        """Queue a handled message for deletion without waiting."""
        self._batcher.put_nowait(message)

    async def run(self) -> None:
        """Send delete batches until closed; flushes everything before returning."""
        await self._batcher.run()

    def close(self) -> None:
        """Accept no more messages and flush."""
        self._batcher.close()

    async def _delete(self, messages: list[Message]) -> None:
        # The same receipt twice in one batch would fail the whole call: keep one.
        unique = list({message.receipt_handle: message for message in messages}.values())
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(unique)]
        result = await call_batch(self._call, entries, operation=_OPERATION)
        deleted = [m for i, m in enumerate(unique) if str(i) in result.succeeded]
        if deleted:
            self._observer.deleted(deleted)
        for i, message in enumerate(unique):
            if str(i) not in result.succeeded:
                error = result.failed[str(i)]
                if self._lose_lease is not None and is_stale_handle(error):
                    self._lose_lease(message, f"SQS refused to delete it ({error.code})")
                else:
                    self._on_error(DeleteError(message.message_id, error))

    async def _call(self, entries: list[dict[str, Any]]) -> Any:
        return await self._client.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
