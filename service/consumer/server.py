"""Server: consumes one SQS queue through the receive -> process -> delete pipeline."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.aio.backoff import Backoff
from service.aio.channel import Channel
from service.aio.lifecycle import Lifecycle
from service.consumer.deleter import Deleter
from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.health import CountingObserver, Health, ShutdownSummary
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.consumer.processors import Processor, ProcessorName, make_processor
from service.consumer.receiver import Capacity, Receiver
from service.consumer.retry import DEFAULT_RETRY_POLICY, MAX_VISIBILITY_TIMEOUT, Retry, RetryPolicy
from service.consumer.visibility import Visibility
from service.errors import ConfigError, ErrorHandler, HandlerError, check_range, log_error
from service.sqs.client import create_client

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DEFAULT_CONCURRENCY = 1
DEFAULT_MAX_NUMBER_OF_MESSAGES = 10
DEFAULT_WAIT_TIME_SECONDS = 1
DEFAULT_VISIBILITY_TIMEOUT = 30
DEFAULT_DELETION_INTERVAL_S = 10.0
DEFAULT_BATCH_DELETE_MAX_MESSAGES = 10
DEFAULT_ATTRIBUTE_NAMES = ("SentTimestamp",)
DEFAULT_MESSAGE_ATTRIBUTE_NAMES = ("All",)
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
DEFAULT_FLUSH_TIMEOUT_S = 10.0
DEFAULT_RECEIVE_BACKOFF = Backoff(base_s=0.5, max_s=30.0)
MAX_RECEIVE_LOOPS = 10
# At shutdown, receive calls in flight get this long (or until the running handlers are done, if later)
# to bring in what SQS already answered, so it can be handed back at once.
RECEIVE_GRACE_S = 0.5

_log = logging.getLogger("service.server")

# Wraps the Server's handling step (handler, then deletion or retry delay) for every message; tracing uses it.
# The wrapped step raises what the handler raised, after the Server has settled the message.
Middleware = Callable[[Handler], Handler]


class Server(Lifecycle):
    """Consumes one SQS queue: receive, process, delete.

    The pipeline has three stages, connected by bounded hand-offs:

    1. **Receive.** Up to `MAX_RECEIVE_LOOPS` loops long-poll ReceiveMessage (`wait_time_seconds`). A loop
       first takes credits for the messages it asks for from the pipeline's capacity (the processor's
       `capacity` plus `prefetch`) and every message holds its credit until its handler is done. So no
       receive is issued while the processors are saturated, yet the next batch is fetched while the
       current one is being handled.
    2. **Process.** The processor (bounded, unbounded or partitioned) calls the handler for each message.
       Success queues the message for deletion. Failure never deletes: the retry policy (or a `Retry`
       raised by the handler) sets its visibility, batched with ChangeMessageVisibilityBatch, and the
       `error_handler` is told. While a message waits or runs, a heartbeat extends its visibility
       before it expires, so it is not redelivered to another consumer meanwhile.
    3. **Delete.** One deleter sends DeleteMessageBatch when `batch_delete_max_messages` are pending or
       the oldest has waited `deletion_interval_s`; transient failures are retried.

    Shutdown (`shutdown(timeout_s)`), in order: stop receiving; hand back every message not yet started
    (visibility 0, so another consumer gets it at once); let running handlers finish within `timeout_s`,
    then cancel them and hand their messages back; abandon the receive calls still in flight (they get
    `RECEIVE_GRACE_S` to bring in what SQS already answered, which is handed back too: a long poll is
    not waited out); flush the pending deletions and visibility changes; close the client if the Server
    created it.

    Observability stays outside the core: `observer` hooks report what happens to messages, and
    `middleware` wraps the handling step of each message (tracing runs it inside a span).
    """

    def __init__(
        self,
        queue_url: str,
        handler: Handler | SyncHandler,
        *,
        client: SQSClient | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        processor: ProcessorName | Processor = "bounded",
        max_number_of_messages: int = DEFAULT_MAX_NUMBER_OF_MESSAGES,
        wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS,
        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
        batch_delete_max_messages: int = DEFAULT_BATCH_DELETE_MAX_MESSAGES,
        deletion_interval_s: float = DEFAULT_DELETION_INTERVAL_S,
        attribute_names: Sequence[str] = DEFAULT_ATTRIBUTE_NAMES,
        message_attribute_names: Sequence[str] = DEFAULT_MESSAGE_ATTRIBUTE_NAMES,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        error_handler: ErrorHandler | None = None,
        observer: PipelineObserver | None = None,
        visibility_heartbeat: bool = True,
        prefetch: int | None = None,
        middleware: Middleware | None = None,
        receive_backoff: Backoff = DEFAULT_RECEIVE_BACKOFF,
    ) -> None:
        check_range("concurrency", concurrency, 1, 100_000)
        check_range("max_number_of_messages", max_number_of_messages, 1, 10)
        check_range("wait_time_seconds", wait_time_seconds, 0, 20)
        check_range("visibility_timeout", visibility_timeout, 1, MAX_VISIBILITY_TIMEOUT)
        check_range("batch_delete_max_messages", batch_delete_max_messages, 1, 10)
        if not 0 < deletion_interval_s < visibility_timeout:
            raise ConfigError(
                "deletion_interval_s", deletion_interval_s, f"> 0 and < visibility_timeout ({visibility_timeout})"
            )
        if prefetch is not None:
            check_range("prefetch", prefetch, 0, 10_000)
        self.queue_url = queue_url
        self.handler = as_handler(handler)
        self._step = self._handle if middleware is None else middleware(self._handle)
        self.processor = make_processor(processor, concurrency)
        self.retry_policy = retry_policy
        self.health = Health()
        self._client = client
        self._settings = _Settings(
            max_number_of_messages=max_number_of_messages,
            wait_time_seconds=wait_time_seconds,
            visibility_timeout=visibility_timeout,
            batch_delete_max_messages=batch_delete_max_messages,
            deletion_interval_s=deletion_interval_s,
            attribute_names=tuple(attribute_names),
            message_attribute_names=tuple(message_attribute_names),
            visibility_heartbeat=visibility_heartbeat,
            receive_backoff=receive_backoff,
        )
        self._capacity = Capacity(self.processor.capacity + (max_number_of_messages if prefetch is None else prefetch))
        self._error_handler = error_handler or log_error
        self._observer = CountingObserver(self.health, observer or PipelineObserver())
        self._waiting: set[Message] = set()
        self._handling: set[Message] = set()
        self._cancelled = 0
        self._runner: asyncio.Task[ShutdownSummary] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._deadline = math.inf
        self._handlers_deadline: asyncio.Timeout | None = None
        self._visibility: Visibility | None = None
        self._deleter: Deleter | None = None
        self._messages: Channel[Message] | None = None

    @property
    def alive(self) -> bool:
        """True from `start` until the pipeline stopped (after shutdown, or because it crashed)."""
        return self._runner is not None and not self._runner.done()

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled (waiting for or in their handler)."""
        return len(self._waiting) + len(self._handling)

    async def start(self) -> None:
        """Start the pipeline; returns once it runs. Raises what kept it from starting."""
        if self._runner is not None:
            raise RuntimeError("the Server was already started")
        loop = asyncio.get_running_loop()
        self.health.started_at = time.monotonic()
        started: asyncio.Future[None] = loop.create_future()
        self._stop = loop.create_future()
        self._runner = asyncio.create_task(self._run(started), name=f"mq-server {self.queue_url}")
        await asyncio.wait([started, self._runner], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        if not started.done():
            await self._runner  # raises why it stopped
        _log.info(
            "server started",
            extra={
                "queue_url": self.queue_url,
                "processor": type(self.processor).__name__,
                "capacity": self.processor.capacity,
            },
        )

    async def shutdown(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> ShutdownSummary:
        """Drain and stop (see the class docstring).

        A second call waits for the first; a shorter `timeout_s` brings the handlers' deadline closer
        (a second SIGTERM: finish now, hand everything back).
        """
        if self._runner is None or self._stop is None:
            return self._summary(timed_out=False, duration_s=0.0)
        self.hurry(timeout_s)
        if not self._stop.done():
            self._stop.set_result(None)
        return await asyncio.shield(self._runner)

    def hurry(self, timeout_s: float = 0.0) -> None:
        """Give running handlers at most `timeout_s` more (a shorter deadline only); at 0 they are cancelled now."""
        self._deadline = min(self._deadline, time.monotonic() + max(0.0, timeout_s))
        if self._handlers_deadline is not None:
            self._handlers_deadline.reschedule(self._loop_time(self._deadline))

    async def wait(self) -> ShutdownSummary:
        """Wait until the pipeline stops; raises what made it crash, if it did."""
        if self._runner is None:
            raise RuntimeError("the Server was not started")
        return await asyncio.shield(self._runner)

    async def _run(self, started: asyncio.Future[None]) -> ShutdownSummary:
        try:
            async with AsyncExitStack() as stack:
                client = self._client
                if client is None:
                    pool = self._receive_loops() + 16
                    client = await stack.enter_async_context(create_client(self.queue_url, max_pool_connections=pool))
                return await self._pipeline(client, started)
        finally:
            self.health.receiving = False
            self.health.stopped = True

    async def _pipeline(self, client: SQSClient, started: asyncio.Future[None]) -> ShutdownSummary:
        s = self._settings
        self._visibility = Visibility(
            client,
            self.queue_url,
            visibility_timeout=s.visibility_timeout,
            observer=self._observer,
            on_error=self._error_handler,
        )
        self._deleter = Deleter(
            client,
            self.queue_url,
            batch_max_messages=s.batch_delete_max_messages,
            interval_s=s.deletion_interval_s,
            observer=self._observer,
            on_error=self._error_handler,
        )
        receiver = Receiver(
            client,
            self.queue_url,
            capacity=self._capacity,
            dispatch=self._dispatch,
            health=self.health,
            observer=self._observer,
            max_number_of_messages=s.max_number_of_messages,
            wait_time_seconds=s.wait_time_seconds,
            visibility_timeout=s.visibility_timeout,
            attribute_names=s.attribute_names,
            message_attribute_names=s.message_attribute_names,
            backoff=s.receive_backoff,
        )
        self._messages = messages = Channel[Message]()
        try:
            return await self._stages(receiver, messages, started)
        finally:
            messages.close()

    async def _stages(
        self, receiver: Receiver, messages: Channel[Message], started: asyncio.Future[None]
    ) -> ShutdownSummary:
        assert self._deleter is not None
        assert self._visibility is not None
        s = self._settings
        async with asyncio.TaskGroup() as group:
            stages = _Stages(
                receiving=group.create_task(receiver.run(self._receive_loops())),
                processing=group.create_task(self.processor.run(messages, self._process)),
                deleting=group.create_task(self._deleter.run()),
                changing=group.create_task(self._visibility.run()),
                heartbeat=group.create_task(self._visibility.heartbeat(self._outstanding))
                if s.visibility_heartbeat
                else None,
            )
            self.health.receiving = True
            started.set_result(None)
            await self._wait_for_stop(stages.receiving)
            return await self._drain(stages, receiver)

    async def _wait_for_stop(self, receiving: asyncio.Task[None]) -> None:
        assert self._stop is not None
        await asyncio.wait([self._stop, receiving], return_when=asyncio.FIRST_COMPLETED)
        if not self._stop.done():
            receiving.result()  # the receive loop died: raise why
            raise RuntimeError("the receive loop stopped by itself")

    async def _drain(self, stages: _Stages, receiver: Receiver) -> ShutdownSummary:
        assert self._messages is not None
        assert self._deleter is not None
        assert self._visibility is not None
        began = time.monotonic()
        self.health.draining = True
        _log.info("draining", extra={"in_flight": self.in_flight, "deadline_in_s": round(self._deadline - began, 3)})
        receiver.stop_receiving()
        for message in list(self._waiting):
            self._release(message)
        self._messages.close()  # from now on _dispatch hands back what in-flight receives bring
        timed_out = not await self._finish_handlers(stages.processing)
        await receiver.abandon(grace_s=began + RECEIVE_GRACE_S - time.monotonic())
        await asyncio.wait({stages.receiving})
        self.health.receiving = False
        for message in list(self._waiting | self._handling):
            self._release(message)
        if stages.heartbeat is not None:
            stages.heartbeat.cancel()
        self._deleter.close()
        self._visibility.close()
        _, unflushed = await asyncio.wait({stages.deleting, stages.changing}, timeout=DEFAULT_FLUSH_TIMEOUT_S)
        for task in unflushed:
            _log.error("pending deletions or visibility changes were not flushed in time")
            task.cancel()
        summary = self._summary(timed_out=timed_out, duration_s=time.monotonic() - began)
        _log.info("server stopped", extra=summary.as_dict())
        return summary

    async def _finish_handlers(self, processing: asyncio.Task[None]) -> bool:
        """Wait for the running handlers until the deadline (which a later shutdown call may bring closer)."""
        try:
            async with asyncio.timeout_at(self._loop_time(self._deadline)) as self._handlers_deadline:
                await asyncio.shield(processing)
        except TimeoutError:
            processing.cancel()
            await asyncio.wait({processing})
            return False
        finally:
            self._handlers_deadline = None
        return True

    def _loop_time(self, monotonic: float) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + (monotonic - time.monotonic())

    def _dispatch(self, raw_messages: list[dict[str, Any]], duration_s: float) -> None:
        assert self._messages is not None
        assert self._visibility is not None
        s = self._settings
        messages = [
            Message(
                self.queue_url,
                raw,
                visibility_timeout=s.visibility_timeout,
                retry_policy=self.retry_policy,
                change_visibility=self._visibility.change_now,
            )
            for raw in raw_messages
        ]
        self._waiting.update(messages)
        self._observer.received(messages, duration_s)
        for message in messages:
            if self.health.draining:
                self._release(message)  # a receive that was in flight when the drain began
            else:
                self._messages.put_nowait(message)

    async def _process(self, message: Message) -> None:
        """What the processor calls for each message: the handling step, with hand-back on cancellation."""
        if message not in self._waiting:
            return  # handed back while it waited
        self._waiting.remove(message)
        self._handling.add(message)
        try:
            await self._step(message)
        except asyncio.CancelledError:
            if message in self._handling:
                self._cancelled += 1
                self._release(message)
            raise
        except Exception as exc:
            if message in self._handling:  # a middleware failed outside the handler
                self._error_handler(HandlerError(message.message_id, exc))
        if message in self._handling:
            self._settle(message)  # not handled: its visibility timeout brings it back

    async def _handle(self, message: Message) -> None:
        """The handling step (which middleware wraps): the handler, then deletion or the retry delay."""
        started = time.monotonic()
        try:
            await self.handler(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._settle(message)
            self._failed(message, exc, time.monotonic() - started)
            raise
        self._settle(message)
        self.health.handled += 1
        self._observer.handled(message, time.monotonic() - started, None)
        await self._queue_deletion(message)

    async def _queue_deletion(self, message: Message) -> None:
        assert self._deleter is not None
        try:
            await self._deleter.put(message)
        except asyncio.CancelledError:
            self._deleter.put_nowait(message)  # handled: it must still be deleted
            raise

    def _failed(self, message: Message, exc: Exception, duration_s: float) -> None:
        assert self._visibility is not None
        self.health.failed += 1
        self._observer.handled(message, duration_s, exc)
        self._error_handler(HandlerError(message.message_id, exc))
        if isinstance(exc, Retry):
            delay_s: int | None = exc.delay_s
        else:
            delay_s = None if message.retry_policy is None else message.retry_policy.delay_s(message.receive_count)
        if delay_s is not None:
            self._visibility.schedule(message, delay_s, "retry")
            self._observer.retry_scheduled(message, delay_s)

    def _release(self, message: Message) -> None:
        """Hand a message back unhandled: visible again at once."""
        assert self._visibility is not None
        self._settle(message)
        self._visibility.schedule(message, 0, "release")

    def _settle(self, message: Message) -> None:
        self._waiting.discard(message)
        self._handling.discard(message)
        self._capacity.give(1)

    def _outstanding(self) -> Collection[Message]:
        return self._waiting | self._handling

    def _receive_loops(self) -> int:
        return min(MAX_RECEIVE_LOOPS, math.ceil(self.processor.capacity / self._settings.max_number_of_messages) + 1)

    def _summary(self, *, timed_out: bool, duration_s: float) -> ShutdownSummary:
        h = self.health
        return ShutdownSummary(
            handled=h.handled,
            failed=h.failed,
            deleted=h.deleted,
            released=h.released,
            cancelled=self._cancelled,
            timed_out=timed_out,
            duration_s=round(duration_s, 3),
        )


@dataclass(frozen=True)
class _Settings:
    max_number_of_messages: int
    wait_time_seconds: int
    visibility_timeout: int
    batch_delete_max_messages: int
    deletion_interval_s: float
    attribute_names: tuple[str, ...]
    message_attribute_names: tuple[str, ...]
    visibility_heartbeat: bool
    receive_backoff: Backoff


@dataclass(frozen=True)
class _Stages:
    receiving: asyncio.Task[None]
    processing: asyncio.Task[None]
    deleting: asyncio.Task[None]
    changing: asyncio.Task[None]
    heartbeat: asyncio.Task[None] | None
