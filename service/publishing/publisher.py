"""Publisher: sends messages to one SQS queue in batches and tells every caller what became of its message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Unpack

from service.aio.batcher import Batcher
from service.aio.lifecycle import Runner
from service.aio.waiters import Waiters
from service.errors import ClosedError, PublishError, SQSError
from service.publishing.entry import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    CheckedEntry,
    PublishOptions,
    build_entry,
    check_attributes,
    check_size,
    checked_entry,
)
from service.publishing.observer import Offload, OutputHandler, PublishObserver
from service.publishing.settings import PublisherOptions, PublisherSettings
from service.sqs.batch import BatchResult, call_batch
from service.sqs.client import create_client
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DEFAULT_PUBLISH_SHUTDOWN_TIMEOUT_S = 10.0

_OPERATION = "SendMessageBatch"
_log = logging.getLogger("service.publisher")


@dataclass(eq=False)
class _Pending:
    entry: dict[str, Any]
    size: int
    future: asyncio.Future[str] = field(repr=False)


class Publisher(Runner[None]):
    """Publishes messages to one SQS queue with SendMessageBatch, and reports each message's fate to its caller.

    Messages are buffered and sent when a batch holds `batch_max_messages` entries or 1 MiB of bodies and
    attributes, or when its oldest message has waited `publish_interval_s`; while no batch is in flight, a
    partial batch goes out at once (a lone caller does not wait for companions). Up to `max_in_flight_batches`
    batches are in flight at once on a standard queue. A FIFO queue sends **one batch at a time**, so
    messages of a group reach SQS in the order they were published; within a batch, SQS keeps the
    entries' order. (A per-entry transient failure retried after later entries of its group succeeded can
    still land behind them: SQS itself reports such failures only rarely.)

    `publish` returns the MessageId once its batch succeeded. Entries failed for a passing reason
    (SenderFault false, throttling, 5xx, network) are retried with backoff and jitter; any other failure
    raises PublishError for that message alone. A message that breaks SQS's rules is refused before it is
    buffered (PublishError, `sender_fault` True). At most `max_buffered` messages wait to be sent:
    `publish` waits for room, `publish_nowait` raises asyncio.QueueFull.

    With `offload` (large payloads in S3), a message of up to `max_message_bytes` (default: the step's
    `max_body_bytes`) is accepted and handed to that step before it is buffered; `publish_nowait` refuses
    the messages it would move, since storing a body cannot be done without waiting.
    Without a `client` it creates its own of kind `sqs_client`: "lean" (the default, least CPU per message)
    or "botocore" (aiobotocore's).

    `shutdown(timeout_s)` takes no more messages, sends what is buffered and waits for the batches in
    flight; messages still unsent at the deadline fail with PublishError code "ShutdownTimeout".
    """

    def __init__(
        self,
        queue_url: str,
        settings: PublisherSettings | None = None,
        *,
        client: SQSClient | None = None,
        offload: Offload | None = None,
        output_handler: OutputHandler | None = None,
        observer: PublishObserver | None = None,
        instrument_client: Callable[[SQSClient], None] | None = None,
        **options: Unpack[PublisherOptions],
    ) -> None:
        super().__init__()
        self.settings = s = replace(settings or PublisherSettings(), **options)
        self.queue_url = queue_url
        self.fifo = is_fifo(queue_url) if s.fifo is None else s.fifo
        self.content_based_deduplication = s.content_based_deduplication
        self._max_message_bytes = s.message_bytes(None if offload is None else offload.max_body_bytes)
        # What SQS itself takes: an entry that stayed in the message (offloaded or small) must fit.
        self._max_sqs_bytes = min(self._max_message_bytes, MAX_MESSAGE_BYTES)
        self._client = client
        self._offload = offload
        self._output_handler = output_handler
        self._observer = observer or PublishObserver()
        self._instrument_client = instrument_client
        self._batcher: Batcher[_Pending] = Batcher(
            self._send,
            max_entries=s.batch_max_messages,
            max_wait_s=s.publish_interval_s,
            max_in_flight=s.in_flight_batches(fifo=self.fifo),
            max_bytes=MAX_BATCH_BYTES,
            size_of=lambda pending: pending.size,
            send_when_idle=True,
        )
        self._unsettled: set[_Pending] = set()
        self._room = Waiters()  # publish calls waiting for buffer room
        self._counts = dict.fromkeys(("published", "failed", "retried", "buffered", "in_flight_batches", "waiting"), 0)
        self._closed = False
        self._stop_timeout_s = DEFAULT_PUBLISH_SHUTDOWN_TIMEOUT_S
        self._active_client: SQSClient | None = None

    @property
    def max_message_bytes(self) -> int:
        """The largest message (body and attributes, in bytes) this Publisher sends."""
        return self._max_message_bytes

    def stats(self) -> dict[str, int]:
        """Counters for /status: published, failed, retried (entry re-sends), buffered, in_flight_batches, waiting."""
        return dict(self._counts)

    async def shutdown(self, timeout_s: float = DEFAULT_PUBLISH_SHUTDOWN_TIMEOUT_S) -> None:
        """Send what is buffered and stop (see the class docstring); a second call waits for the first."""
        self._close()
        self._stop_timeout_s = min(self._stop_timeout_s, timeout_s)
        if self._request_stop():
            await self.wait()

    async def publish(self, body: str, **options: Unpack[PublishOptions]) -> str:
        """Send one message; returns its SQS MessageId. Raises PublishError, or ClosedError after shutdown.

        Options: message_attributes (SQS's shape), route and partition_key (String attributes read by the
        Router and the partitioned processor), delay_s, group_id and deduplication_id (FIFO).
        """
        return await self.publish_entry(build_entry(body, **options))

    async def publish_entry(self, entry: Mapping[str, Any]) -> str:
        """Send a SendMessageBatchRequestEntry-shaped message (its Id, if any, is replaced); returns the MessageId."""
        return await self.publish_checked(self.check_entry(entry))

    async def publish_checked(self, checked: CheckedEntry) -> str:
        """Send a message `check_entry` passed (so it is not checked again); returns the MessageId."""
        if self._offload is not None:
            checked = CheckedEntry(await self._offload(checked))  # its own checks passed: the body moved to S3
        await self._wait_for_room()
        return await self._enqueue(checked)

    def publish_nowait(self, body: str, **options: Unpack[PublishOptions]) -> asyncio.Future[str]:
        """Buffer one message without waiting; the future resolves to its MessageId or raises PublishError.

        Raises at once: PublishError for an invalid message, asyncio.QueueFull when `max_buffered` messages
        are waiting, ClosedError after shutdown.
        """
        checked = self.check_entry(build_entry(body, **options))
        if self._offload is not None and self._offload.needed(checked):
            raise PublishError(
                "InvalidParameterValue",
                "this message's body goes to S3, which publish_nowait cannot wait for: use publish",
                sender_fault=True,
            )
        if self._counts["buffered"] >= self.settings.max_buffered:
            raise asyncio.QueueFull(f"{self.settings.max_buffered} messages are already waiting to be sent")
        return self._enqueue(checked)

    def check_entry(self, entry: Mapping[str, Any]) -> CheckedEntry:
        """`entry` checked against SQS's rules and this queue's (FIFO fields, size limit); raises PublishError.

        Also raises ClosedError after shutdown, RuntimeError before start.
        """
        if self._closed:
            raise ClosedError(f"the Publisher for {self.queue_url} is shut down and takes no more messages")
        if not self.started:
            raise RuntimeError("the Publisher was not started")
        return checked_entry(
            entry,
            fifo=self.fifo,
            content_based_deduplication=bool(self.content_based_deduplication),
            max_message_bytes=self.max_message_bytes,
        )

    async def _wait_for_room(self) -> None:
        while self._counts["buffered"] >= self.settings.max_buffered and not self._closed:
            self._counts["waiting"] += 1
            try:
                await self._room.wait()
            finally:
                self._counts["waiting"] -= 1
        if self._closed:
            raise ClosedError(f"the Publisher for {self.queue_url} shut down before the message was buffered")

    def _enqueue(self, entry: CheckedEntry) -> asyncio.Future[str]:
        attributes = dict(entry.get("MessageAttributes") or {})
        try:
            self._notify(self._observer.enqueued, entry)
            if (entry.get("MessageAttributes") or {}) != attributes:  # the observer added some: check them
                check_attributes(entry.get("MessageAttributes"))
            size = check_size(entry, self._max_sqs_bytes)
        except PublishError as error:
            self._notify(self._observer.failed, entry, error)
            raise
        pending = _Pending(entry, size, asyncio.get_running_loop().create_future())
        self._batcher.put_nowait(pending)
        self._unsettled.add(pending)
        self._counts["buffered"] += 1
        return pending.future

    def _task_name(self) -> str:
        return f"mq-publisher {self.queue_url}"

    async def _serve(self, started: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = self._client
                if client is None:
                    client = await stack.enter_async_context(
                        create_client(self.queue_url, kind=self.settings.sqs_client)
                    )
                    if self._instrument_client is not None:
                        self._instrument_client(client)
                self._active_client = client
                if self.fifo and self.content_based_deduplication is None:
                    self.content_based_deduplication = await _content_based_deduplication(client, self.queue_url)
                async with asyncio.TaskGroup() as group:
                    sending = group.create_task(self._batcher.run(), name="mq-publisher batches")
                    started.set_result(None)
                    await self._until_stopped(sending)
                    await self._drain(sending, self._stop_timeout_s)
        finally:
            self._close()
            self._fail_unsettled()

    async def _drain(self, sending: asyncio.Task[None], timeout_s: float) -> None:
        _log.info("publisher draining", extra={"buffered": self._counts["buffered"], "timeout_s": timeout_s})
        self._batcher.close()
        done, _ = await asyncio.wait({sending}, timeout=max(0.0, timeout_s))
        if not done:
            _log.error("publisher shutdown deadline passed", extra={"unsent": len(self._unsettled)})
            sending.cancel()
            await asyncio.wait({sending})
        _log.info("publisher stopped", extra=self.stats())

    def _close(self) -> None:
        self._closed = True
        self._room.wake_all()  # every publish waiting for room raises ClosedError

    def _fail_unsettled(self) -> None:
        error = PublishError(
            "ShutdownTimeout",
            "the Publisher stopped before this message's batch succeeded (if it was in flight, SQS may have it)",
            sender_fault=False,
            operation=_OPERATION,
        )
        for pending in list(self._unsettled):
            self._failed(pending, error)
        self._counts["buffered"] = 0

    async def _send(self, batch: list[_Pending]) -> None:
        self._counts["buffered"] -= len(batch)
        self._room.wake(len(batch))
        self._counts["in_flight_batches"] += 1
        try:
            entries = [{**pending.entry, "Id": str(i)} for i, pending in enumerate(batch)]
            result = await call_batch(
                self._call,
                entries,
                operation=_OPERATION,
                attempts=self.settings.batch_attempts,
                backoff=self.settings.backoff,
            )
            self._counts["retried"] += result.retried
            for i, pending in enumerate(batch):
                succeeded = result.succeeded.get(str(i))
                if succeeded is not None:
                    self._published(pending, str(succeeded["MessageId"]))
                else:
                    self._failed(pending, result.failed[str(i)])
            self._report(entries, result)
        finally:
            self._counts["in_flight_batches"] -= 1

    async def _call(self, entries: list[dict[str, Any]]) -> Any:
        assert self._active_client is not None
        return await self._active_client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]

    def _published(self, pending: _Pending, message_id: str) -> None:
        if pending not in self._unsettled:
            return
        self._unsettled.discard(pending)
        self._counts["published"] += 1
        self._notify(self._observer.published, pending.entry, message_id)
        if not pending.future.done():
            pending.future.set_result(message_id)

    def _failed(self, pending: _Pending, error: SQSError) -> None:
        if pending not in self._unsettled:
            return
        self._unsettled.discard(pending)
        failure = _as_publish_error(error)
        self._counts["failed"] += 1
        self._notify(self._observer.failed, pending.entry, failure)
        if not pending.future.done():
            pending.future.set_exception(failure)

    def _report(self, entries: list[dict[str, Any]], result: BatchResult) -> None:
        if self._output_handler is not None:
            self._notify(self._output_handler, entries, result)

    def _notify(self, hook: Callable[..., None], *args: Any) -> None:
        """Call a user hook; its exceptions are logged, never allowed to break publishing."""
        try:
            hook(*args)
        except Exception:
            _log.exception("publisher hook %s raised", getattr(hook, "__qualname__", hook))


def _as_publish_error(error: SQSError) -> PublishError:
    if isinstance(error, PublishError):
        return error
    return PublishError(error.code, error.sqs_message, sender_fault=error.sender_fault, operation=error.operation)


async def _content_based_deduplication(client: SQSClient, queue_url: str) -> bool:
    response = await client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ContentBasedDeduplication"])
    return response.get("Attributes", {}).get("ContentBasedDeduplication", "false").lower() == "true"
