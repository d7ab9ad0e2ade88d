"""Publisher: sends messages to one SQS queue in batches and tells every caller what became of its message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, Unpack

from service.aio.backoff import Backoff
from service.aio.batcher import Batcher
from service.aio.lifecycle import Lifecycle
from service.aio.waiters import Waiters
from service.errors import ClosedError, ConfigError, PublishError, SQSError, check_range
from service.publishing.entry import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    PublishOptions,
    build_entry,
    check_attributes,
    check_size,
    checked_entry,
)
from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS, DEFAULT_BATCH_BACKOFF, BatchResult, call_batch
from service.sqs.client import CLIENT_KINDS, DEFAULT_CLIENT_KIND, ClientKind, create_client

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DEFAULT_PUBLISH_INTERVAL_S = 1.0
DEFAULT_BATCH_MAX_MESSAGES = 10
DEFAULT_MAX_IN_FLIGHT_BATCHES = 4
DEFAULT_MAX_BUFFERED = 1000
DEFAULT_PUBLISH_SHUTDOWN_TIMEOUT_S = 10.0

_OPERATION = "SendMessageBatch"
_log = logging.getLogger("service.publisher")

OutputHandler: TypeAlias = Callable[[list[dict[str, Any]], BatchResult], None]
"""Called with each batch's request entries (Id included) and its outcome, keyed by those Ids."""


class PublishObserver:
    """Per-message hooks (tracing uses them); every hook is a no-op here. Hooks must not block."""

    def enqueued(self, entry: dict[str, Any]) -> None:
        """`publish` accepted `entry`; called in the caller's context. May add message attributes (at most 10)."""

    def published(self, entry: dict[str, Any], message_id: str) -> None:
        """SQS stored the message as `message_id`."""

    def failed(self, entry: dict[str, Any], error: PublishError) -> None:
        """The message was not published."""


@dataclass(eq=False)
class _Pending:
    entry: dict[str, Any]
    size: int
    future: asyncio.Future[str] = field(repr=False)


class Publisher(Lifecycle):
    """Publishes messages to one SQS queue with SendMessageBatch, and reports each message's fate to its caller.

    Messages are buffered and sent when a batch holds `batch_max_messages` entries or 1 MiB of bodies and
    attributes, or when its oldest message has waited `publish_interval_s`. Up to `max_in_flight_batches`
    batches are in flight at once on a standard queue. A FIFO queue sends **one batch at a time**, so
    messages of a group reach SQS in the order they were published; within a batch, SQS keeps the
    entries' order. (A per-entry transient failure retried after later entries of its group succeeded can
    still land behind them: SQS itself reports such failures only rarely.)

    `publish` returns the MessageId once its batch succeeded. Entries failed for a passing reason
    (SenderFault false, throttling, 5xx, network) are retried with backoff and jitter; any other failure
    raises PublishError for that message alone. A message that breaks SQS's rules is refused before it is
    buffered (PublishError, `sender_fault` True). At most `max_buffered` messages wait to be sent:
    `publish` waits for room, `publish_nowait` raises asyncio.QueueFull.

    Without a `client` it creates its own of kind `sqs_client`: "lean" (the default, least CPU per message)
    or "botocore" (aiobotocore's).

    `shutdown(timeout_s)` takes no more messages, sends what is buffered and waits for the batches in
    flight; messages still unsent at the deadline fail with PublishError code "ShutdownTimeout".
    """

    def __init__(
        self,
        queue_url: str,
        *,
        client: SQSClient | None = None,
        sqs_client: ClientKind = DEFAULT_CLIENT_KIND,
        publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S,
        batch_max_messages: int = DEFAULT_BATCH_MAX_MESSAGES,
        max_in_flight_batches: int | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        output_handler: OutputHandler | None = None,
        observer: PublishObserver | None = None,
        fifo: bool | None = None,
        content_based_deduplication: bool | None = None,
        batch_attempts: int = DEFAULT_BATCH_ATTEMPTS,
        backoff: Backoff = DEFAULT_BATCH_BACKOFF,
    ) -> None:
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo") if fifo is None else fifo
        in_flight = _in_flight_batches(max_in_flight_batches, fifo=self.fifo)
        _check_settings(publish_interval_s, batch_max_messages, max_buffered, max_message_bytes, batch_attempts)
        if sqs_client not in CLIENT_KINDS:
            raise ConfigError("sqs_client", sqs_client, f"one of {', '.join(CLIENT_KINDS)}")
        self.content_based_deduplication = content_based_deduplication
        self._client = client
        self._sqs_client = sqs_client
        self._max_buffered = max_buffered
        self._max_message_bytes = max_message_bytes
        self._output_handler = output_handler
        self._observer = observer or PublishObserver()
        self._batch_attempts = batch_attempts
        self._backoff = backoff
        self._batcher: Batcher[_Pending] = Batcher(
            self._send,
            max_entries=batch_max_messages,
            max_wait_s=publish_interval_s,
            max_in_flight=in_flight,
            max_bytes=MAX_BATCH_BYTES,
            size_of=lambda pending: pending.size,
        )
        self._unsettled: set[_Pending] = set()
        self._room = Waiters()  # publish calls waiting for buffer room
        self._counts = dict.fromkeys(("published", "failed", "retried", "buffered", "in_flight_batches", "waiting"), 0)
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self._stop: asyncio.Future[float] | None = None
        self._active_client: SQSClient | None = None

    def stats(self) -> dict[str, int]:
        """Counters for /status: published, failed, retried (entry re-sends), buffered, in_flight_batches, waiting."""
        return dict(self._counts)

    async def start(self) -> None:
        """Start sending; returns once running. Raises what kept it from starting."""
        if self._runner is not None:
            raise RuntimeError("the Publisher was already started")
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._stop = loop.create_future()
        self._runner = asyncio.create_task(self._run(started), name=f"mq-publisher {self.queue_url}")
        await asyncio.wait([started, self._runner], return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            await self._runner  # raises why it stopped

    async def shutdown(self, timeout_s: float = DEFAULT_PUBLISH_SHUTDOWN_TIMEOUT_S) -> None:
        """Send what is buffered and stop (see the class docstring); a second call waits for the first."""
        self._close()
        if self._runner is None or self._stop is None:
            return
        if not self._stop.done():
            self._stop.set_result(timeout_s)
        await asyncio.shield(self._runner)

    async def publish(self, body: str, **options: Unpack[PublishOptions]) -> str:
        """Send one message; returns its SQS MessageId. Raises PublishError, or ClosedError after shutdown.

        Options: message_attributes (SQS's shape), route and partition_key (String attributes read by the
        Router and the partitioned processor), delay_s, group_id and deduplication_id (FIFO).
        """
        return await self.publish_entry(build_entry(body, **options))

    async def publish_entry(self, entry: Mapping[str, Any]) -> str:
        """Send a SendMessageBatchRequestEntry-shaped message (its Id, if any, is replaced); returns the MessageId."""
        checked = self._check(entry)
        await self._wait_for_room()
        return await self._enqueue(checked)

    def publish_nowait(self, body: str, **options: Unpack[PublishOptions]) -> asyncio.Future[str]:
        """Buffer one message without waiting; the future resolves to its MessageId or raises PublishError.

        Raises at once: PublishError for an invalid message, asyncio.QueueFull when `max_buffered` messages
        are waiting, ClosedError after shutdown.
        """
        entry = build_entry(body, **options)
        checked = self._check(entry)
        if self._counts["buffered"] >= self._max_buffered:
            raise asyncio.QueueFull(f"{self._max_buffered} messages are already waiting to be sent")
        return self._enqueue(checked)

    def _check(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise ClosedError(f"the Publisher for {self.queue_url} is shut down and takes no more messages")
        if self._runner is None:
            raise RuntimeError("the Publisher was not started")
        return checked_entry(
            entry,
            fifo=self.fifo,
            content_based_deduplication=bool(self.content_based_deduplication),
            max_message_bytes=self._max_message_bytes,
        )

    async def _wait_for_room(self) -> None:
        while self._counts["buffered"] >= self._max_buffered and not self._closed:
            self._counts["waiting"] += 1
            try:
                await self._room.wait()
            finally:
                self._counts["waiting"] -= 1
        if self._closed:
            raise ClosedError(f"the Publisher for {self.queue_url} shut down before the message was buffered")

    def _enqueue(self, entry: dict[str, Any]) -> asyncio.Future[str]:
        try:
            self._notify(self._observer.enqueued, entry)
            # The observer may have added attributes: measure again.
            check_attributes(entry.get("MessageAttributes"))
            size = check_size(entry, self._max_message_bytes)
        except PublishError as error:
            self._notify(self._observer.failed, entry, error)
            raise
        pending = _Pending(entry, size, asyncio.get_running_loop().create_future())
        self._batcher.put_nowait(pending)
        self._unsettled.add(pending)
        self._counts["buffered"] += 1
        return pending.future

    async def _run(self, started: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = self._client
                if client is None:
                    client = await stack.enter_async_context(create_client(self.queue_url, kind=self._sqs_client))
                self._active_client = client
                if self.fifo and self.content_based_deduplication is None:
                    self.content_based_deduplication = await _content_based_deduplication(client, self.queue_url)
                async with asyncio.TaskGroup() as group:
                    sending = group.create_task(self._batcher.run(), name="mq-publisher batches")
                    started.set_result(None)
                    await self._drain(sending, await self._wait_for_stop(sending))
        finally:
            self._close()
            self._fail_unsettled()

    async def _wait_for_stop(self, sending: asyncio.Task[None]) -> float:
        assert self._stop is not None
        await asyncio.wait([self._stop, sending], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        if not self._stop.done():
            sending.result()  # the batch loop died: raise why
            raise RuntimeError("the batch loop stopped by itself")
        return self._stop.result()

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
                self._call, entries, operation=_OPERATION, attempts=self._batch_attempts, backoff=self._backoff
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


def _in_flight_batches(value: int | None, *, fifo: bool) -> int:
    if value is None:
        return 1 if fifo else DEFAULT_MAX_IN_FLIGHT_BATCHES
    if fifo and value != 1:
        raise ConfigError("max_in_flight_batches", value, "1 on a FIFO queue (batches go one at a time, in order)")
    check_range("max_in_flight_batches", value, 1, 100)
    return value


def _check_settings(
    publish_interval_s: float, batch_max_messages: int, max_buffered: int, max_message_bytes: int, batch_attempts: int
) -> None:
    check_range("batch_max_messages", batch_max_messages, 1, 10)
    check_range("max_buffered", max_buffered, 1, 1_000_000)
    check_range("max_message_bytes", max_message_bytes, 1024, MAX_MESSAGE_BYTES)
    check_range("batch_attempts", batch_attempts, 1, 100)
    if not 0 < publish_interval_s <= 3600:
        raise ConfigError("publish_interval_s", publish_interval_s, "> 0 and <= 3600 seconds")
