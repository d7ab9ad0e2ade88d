"""Server: consumes one SQS queue through the receive -> process -> delete pipeline."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Unpack

from service.aio.budget import Share
from service.aio.lifecycle import Runner
from service.consumer.batching import AnyHandler, BatchHandler
from service.consumer.gathering import BatchingProcessor
from service.consumer.handler import Handler, as_handler
from service.consumer.health import Health, HealthObserver, ShutdownSummary
from service.consumer.ledger import Ledger
from service.consumer.observer import PipelineObserver
from service.consumer.pipeline import (
    DEFAULT_FLUSH_TIMEOUT_S,
    BatchMiddleware,
    Middleware,
    Parts,
    Pipeline,
    receive_loops,
)
from service.consumer.processors import (
    BoundedProcessor,
    GroupShare,
    PartitionedProcessor,
    Processor,
    UnboundedProcessor,
    make_processor,
)
from service.consumer.reporting import ErrorHandler, Observers, guarded, log_error
from service.consumer.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from service.consumer.router import Router
from service.consumer.settings import ServerOptions, ServerSettings
from service.sqs.client import create_client
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
# At a drain, receive calls in flight may return until the drain deadline, or at least this long after
# their long poll ends (wait_time_seconds), for an answer still on its way: their messages are handed back.
RECEIVE_ANSWER_MARGIN_S = 5.0

_log = logging.getLogger("service.consumer")
_NOTHING_HAPPENED = ShutdownSummary(0, 0, 0, 0, 0, timed_out=False, duration_s=0.0)  # never started


class Server(Runner[ShutdownSummary]):
    """Consumes one SQS queue: receive, process, delete.

    The pipeline has three stages, connected by bounded hand-offs:

    1. **Receive.** At start a GetQueueAttributes call proves the queue exists and the credentials work
       (readiness turns true then, not after a first long poll). Then up to `MAX_RECEIVE_LOOPS` loops
       long-poll ReceiveMessage (`wait_time_seconds`). A loop first reserves credits for the messages it
       asks for from the in-flight ledger (the processor's `capacity` plus `prefetch`), and tokens from the
       rate limit (`max_messages_per_s`), and every message holds its credit until it is settled. So no
       receive is issued while the processors are saturated, yet the next batch is fetched while the
       current one is being handled. When the rate limit changes (`set_rate_limit`) while a receive is in
       flight, what it brings waits in the ledger for tokens at the new rate, so a lowered limit holds at once.
    2. **Process.** As each message is built, the SNS, EventBridge or S3 envelope its body comes in is opened
       (`envelope`; service/sqs/envelopes.py), so the handler sees the inner body and attributes; an S3 test event
       is deleted without calling the handler, and a malformed envelope is rejected (EnvelopeError, a `Reject`, in
       the handler's place). The processor (bounded, unbounded or partitioned; "auto" is partitioned on a FIFO
       queue, bounded elsewhere) calls the pipeline's handling step for each message and learns its outcome
       (succeeded, failed, released). For a batch handler (`service.batch`, or a Router with batch routes) the
       batching processor gathers messages into batches (`max_messages`, within `max_wait_s`) and runs up to
       `concurrency` of them, and each message of a batch is settled by its own outcome. Success queues the
       message for deletion. Failure never deletes: the retry policy (or a `Retry` raised by the handler) sets its
       visibility, batched with ChangeMessageVisibilityBatch, and the `error_handler` is told. A handler that
       raises `Reject` sends its message to the queue's dead-letter queue at once (named by the RedrivePolicy the
       start-up check read): the rejecter copies it there with SendMessageBatch and queues it for deletion only
       once SQS stored the copy; without a dead-letter queue, or when the send fails for good, the retry policy
       applies instead. On a FIFO queue the partitioned processor keys messages by MessageGroupId, and when a
       message does not succeed it hands back (visibility 0, unhandled) every later message of its group the pod
       holds, so SQS delivers the group again in order; the batching processor does the same for a group's
       messages in and behind a batch. With `max_in_flight_per_group`, the bounded and unbounded processors run
       at most that many messages of one group at once; a few over the cap wait in the pod, the rest are handed
       back with a delay (service/consumer/groups.py). While a message waits or runs, a heartbeat extends its
       visibility before it expires, so it is not redelivered to another consumer meanwhile. When an extension is
       refused for a stale receipt handle, or the deadline passes without one, the message's lease is lost:
       `Message.lease_lost` turns true, the observers are told, and with `cancel_on_lease_lost` its handler is
       cancelled (never deleted then); a later delete refused for the stale handle counts as the lost lease, not
       as an error.
    3. **Delete.** One deleter sends DeleteMessageBatch when `batch_delete_max_messages` are pending or
       the oldest has waited the deletion interval; transient failures are retried.

    `pause()` stops receiving and hands back what waits for a handler; running handlers finish and are
    deleted as usual; `resume()` receives again.

    Shutdown, in order: stop issuing receive calls; hand back every message not yet started (visibility
    0, so another consumer gets it at once); let running handlers finish until the deadline (`timeout_s`
    from the shutdown, brought closer by `hurry`), then cancel them and hand their messages back; flush
    the dead-letter sends, then the pending deletions (`drain()` returns here); let the receive calls
    still in flight return, handing back at once whatever they bring (SQS keeps a long poll open and may
    give it messages published meanwhile), until the same deadline; flush the visibility changes; close
    the client if the Server created it (`shutdown()` and `wait()` return here).

    Data flows one way: the stages report events to the observers (`Health` counts from them, the user's
    `observer`, one or several, and telemetry see them too; a hook that raises is logged and skipped) and errors to the
    `error_handler`; the in-flight ledger alone holds what is waiting or running and the credits.
    `middleware` wraps the handling step of each message (tracing runs it inside a span), and
    `instrument_client` gets the SQS client the Server creates (a `client` given is used as it is).

    A `budget` (a Share of a Budget several Servers hold: service/aio/budget.py) caps the handlers running
    across those Servers: a message (or a batch) takes a slot of it before its handler starts and gives it back
    once settled; while it waits for the slot it is a waiting message (heartbeat, hand-back at a pause or drain).
    """

    def __init__(
        self,
        queue_url: str,
        handler: AnyHandler,
        settings: ServerSettings | None = None,
        *,
        client: SQSClient | None = None,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        error_handler: ErrorHandler | None = None,
        observer: PipelineObserver | Sequence[PipelineObserver] | None = None,
        middleware: Middleware | None = None,
        batch_middleware: BatchMiddleware | None = None,
        instrument_client: Callable[[SQSClient], None] | None = None,
        budget: Share | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__()
        self.settings = replace(settings or ServerSettings(), **options) if options else settings or ServerSettings()
        self.queue_url = queue_url
        self.handler = _single_handler(handler)
        share = GroupShare(self.settings.max_in_flight_per_group, self.settings.visibility_timeout)
        self.processor: Processor | BatchingProcessor = _batching(
            handler, self.settings.concurrency, fifo=is_fifo(queue_url)
        ) or make_processor(self.settings.processor, self.settings.concurrency, fifo=is_fifo(queue_url), share=share)
        self.retry_policy = retry_policy
        self.health = Health()
        self._client = client
        self._instrument_client = instrument_client
        self._ledger = Ledger(self.processor.capacity + self.settings.effective_prefetch)
        observers = [] if observer is None else [observer] if isinstance(observer, PipelineObserver) else observer
        self._observers = Observers([HealthObserver(self.health), *observers])
        self._parts = Parts(
            queue_url=queue_url,
            settings=self.settings,
            handler=self.handler,
            processor=self.processor,
            ledger=self._ledger,
            health=self.health,
            observers=self._observers,
            on_error=guarded(error_handler or log_error, self._observers.hook_errors),
            retry_policy=retry_policy,
            middleware=middleware,
            batch_middleware=batch_middleware,
            budget=budget,
        )
        self._pipeline: Pipeline | None = None
        self._paused_since: float | None = None
        self._deadline = math.inf
        self._receives_cut = math.inf
        self._deadline_timeouts: dict[asyncio.Timeout, Callable[[], float]] = {}
        self._drained: asyncio.Future[ShutdownSummary] | None = None

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled (waiting for or in their handler)."""
        return self._ledger.in_flight

    @property
    def polling(self) -> int:
        """Receive calls in flight."""
        return self._pipeline.receiver.polling if self._pipeline is not None else 0

    @property
    def hook_errors(self) -> dict[str, int]:
        """Failures of observer hooks and of the error handler, by hook and kind (they never stop the pipeline)."""
        return dict(self._observers.hook_errors)

    @property
    def paused(self) -> bool:
        """True between `pause()` and `resume()`."""
        return self._paused_since is not None

    @property
    def paused_since(self) -> float | None:
        """When the Server was paused (seconds since the epoch), or None."""
        return self._paused_since

    @property
    def rate_limit(self) -> float | None:
        """Messages received per second at most, or None for no limit."""
        return self._pipeline.receiver.rate.per_s if self._pipeline else self.settings.max_messages_per_s

    def set_rate_limit(self, per_s: float | None) -> None:
        """Change the rate limit now (None removes it); raises ConfigError for a value that is not positive."""
        self.settings = replace(self.settings, max_messages_per_s=per_s)
        if self._pipeline is not None:
            self._pipeline.receiver.rate.per_s = per_s

    def pause(self) -> None:
        """Stop receiving without draining: no receive call until `resume`; un-started messages are handed back."""
        if self._paused_since is None:
            self._paused_since = time.time()
            self.health.paused = True
            if self._pipeline is not None:
                self._pipeline.pause()
            _log.info("paused", extra={"queue_url": self.queue_url, "in_flight": self.in_flight})

    def resume(self) -> None:
        """Receive again after `pause`."""
        if self._paused_since is not None:
            self._paused_since = None
            self.health.paused = False
            if self._pipeline is not None:
                self._pipeline.receiver.resume()
            _log.info("resumed", extra={"queue_url": self.queue_url})

    async def drain(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> ShutdownSummary:
        """Begin the shutdown; return once the running handlers are done and the deletions flushed.

        Receive calls still in flight go on in the background (see the class docstring); `wait()` for them.
        """
        if self._drained is None or not self._request_stop():
            return _NOTHING_HAPPENED
        self.hurry(timeout_s)
        runner = asyncio.ensure_future(self.wait())
        await asyncio.wait([self._drained, runner], return_when=asyncio.FIRST_COMPLETED)
        if self._drained.done():
            runner.cancel()
            return self._drained.result()
        return runner.result()  # stopped (or crashed) before it drained

    async def shutdown(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> ShutdownSummary:
        """Drain and stop (see the class docstring); a second call waits for the first.

        A shorter `timeout_s` brings the deadline closer (a second SIGTERM: finish now, hand everything back).
        """
        if not self.started:
            return _NOTHING_HAPPENED
        await self.drain(timeout_s)
        return await self.wait()

    def hurry(self, timeout_s: float = 0.0) -> None:
        """Move the deadline to at most `timeout_s` from now: at 0, running handlers and receive calls are cancelled."""
        cut = time.monotonic() + max(0.0, timeout_s)
        self._deadline = min(self._deadline, cut)
        if self.health.draining:
            self._receives_cut = min(self._receives_cut, cut)
        for timeout, deadline in self._deadline_timeouts.items():
            timeout.reschedule(_loop_time(deadline()))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Start the pipeline; returns once it runs. Raises what kept it from starting."""
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await super().start()

    def _task_name(self) -> str:
        return f"mq-server {self.queue_url}"

    async def _serve(self, started: asyncio.Future[None]) -> ShutdownSummary:
        self.health.started_at = time.monotonic()
        try:
            async with AsyncExitStack() as stack:
                client = self._client
                if client is None:
                    pool = self._receive_loops() + 16
                    client = await stack.enter_async_context(
                        create_client(self.queue_url, max_pool_connections=pool, kind=self.settings.sqs_client)
                    )
                    if self._instrument_client is not None:
                        self._instrument_client(client)
                self._pipeline = Pipeline(client, self._parts)
                return await self._run(self._pipeline, started)
        finally:
            self.health.receiving = False
            self.health.stopped = True

    async def _run(self, pipeline: Pipeline, started: asyncio.Future[None]) -> ShutdownSummary:
        async with asyncio.TaskGroup() as group:
            stages = _Stages(
                receiving=group.create_task(pipeline.receiver.run(self._receive_loops())),
                processing=group.create_task(self.processor.run(pipeline.messages, pipeline)),
                deleting=group.create_task(pipeline.deleter.run()),
                rejecting=group.create_task(pipeline.rejecter.run()),
                changing=group.create_task(pipeline.visibility.run()),
                heartbeat=group.create_task(pipeline.visibility.heartbeat())
                if self.settings.visibility_heartbeat
                else None,
            )
            if self.paused:
                pipeline.pause()
            for warning in setting_warnings(self.queue_url, self.settings, self.processor):
                _log.warning("%s", warning, extra={"queue_url": self.queue_url})
            self.health.receiving = True
            started.set_result(None)
            _log.info("server started", extra={"queue_url": self.queue_url, "capacity": self.processor.capacity})
            await self._until_stopped(stages.receiving)
            return await self._drain(pipeline, stages)

    async def _drain(self, pipeline: Pipeline, stages: _Stages) -> ShutdownSummary:
        began = time.monotonic()
        self.health.draining = True
        _log.info("draining", extra={"in_flight": self.in_flight, "deadline_in_s": round(self._deadline - began, 3)})
        pipeline.receiver.stop_receiving()
        pipeline.pause()
        pipeline.messages.close()  # from now on what in-flight receives bring is handed back at once
        timed_out = not await self._until_deadline(stages.processing, lambda: self._deadline, cancel=True)
        for message in self._ledger.outstanding():
            pipeline.release(message)
        if stages.heartbeat is not None:
            stages.heartbeat.cancel()
        pipeline.rejecter.close()  # first: what reaches the dead-letter queue is then deleted
        await _flush(stages.rejecting, "dead-letter sends")
        pipeline.deleter.close()
        await _flush(stages.deleting, "deletions")
        await _flush(asyncio.ensure_future(pipeline.visibility.flush()), "hand-backs")
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(pipeline.summary(timed_out=timed_out, duration_s=time.monotonic() - began))
        answered_by = began + self.settings.wait_time_seconds + RECEIVE_ANSWER_MARGIN_S
        receives_deadline = max(self._deadline, answered_by)
        if not await self._until_deadline(
            stages.receiving, lambda: min(receives_deadline, self._receives_cut), cancel=False
        ):
            pipeline.receiver.abandon()
            await asyncio.wait({stages.receiving})
        self.health.receiving = False
        pipeline.visibility.close()
        await _flush(stages.changing, "visibility changes")
        summary = pipeline.summary(timed_out=timed_out, duration_s=time.monotonic() - began)
        _log.info("server stopped", extra=summary.as_dict())
        return summary

    def _receive_loops(self) -> int:
        return receive_loops(self.processor.capacity, self.settings)

    async def _until_deadline(self, task: asyncio.Task[None], deadline: Callable[[], float], *, cancel: bool) -> bool:
        """Wait for `task` until `deadline()` (which `hurry` may bring closer); False if the deadline passed."""
        try:
            async with asyncio.timeout_at(_loop_time(deadline())) as timeout:
                self._deadline_timeouts[timeout] = deadline
                await asyncio.shield(task)
        except TimeoutError:
            if cancel:
                task.cancel()
                await asyncio.wait({task})
            return False
        finally:
            self._deadline_timeouts.clear()
        return True


def setting_warnings(queue_url: str, settings: ServerSettings, processor: Processor | BatchingProcessor) -> list[str]:
    """What the settings give up that the user may not expect: a FIFO queue's order, a cap that does nothing."""
    warnings = []
    name = type(processor).__name__
    if is_fifo(queue_url) and isinstance(processor, BoundedProcessor | UnboundedProcessor):
        warnings.append(
            f"processor {name} does not keep the message group order of the FIFO queue {queue_url}: a group's "
            "messages received together run at once; set processor (MQ_PROCESSOR) to auto or partitioned"
        )
    if settings.max_in_flight_per_group is not None and isinstance(processor, PartitionedProcessor):
        warnings.append(
            "max_in_flight_per_group (MQ_MAX_IN_FLIGHT_PER_GROUP) applies to the bounded and unbounded "
            "processors; the partitioned processor already runs one message per key at a time"
        )
    if settings.max_in_flight_per_group is not None and isinstance(processor, BatchingProcessor):
        warnings.append(
            "max_in_flight_per_group (MQ_MAX_IN_FLIGHT_PER_GROUP) does not apply to batch handlers: a batch "
            "takes what the receives bring, up to its max_messages"
        )
    return warnings


@dataclass(frozen=True)
class _Stages:
    receiving: asyncio.Task[None]
    processing: asyncio.Task[None]
    deleting: asyncio.Task[None]
    rejecting: asyncio.Task[None]
    changing: asyncio.Task[None]
    heartbeat: asyncio.Task[None] | None


async def _flush(task: asyncio.Future[None], what: str) -> None:
    _, unflushed = await asyncio.wait({task}, timeout=DEFAULT_FLUSH_TIMEOUT_S)
    if unflushed:
        _log.error("pending %s were not flushed in time", what)
        task.cancel()


def _single_handler(handler: AnyHandler) -> Handler:
    """The per-message Handler: a batch handler is called with a batch of one."""
    if isinstance(handler, BatchHandler):
        return Router(fallback=handler)
    return as_handler(handler)


def _batching(handler: AnyHandler, concurrency: int, *, fifo: bool) -> BatchingProcessor | None:
    """The batching processor for a batch handler, or a Router with batch routes; None for other handlers."""
    if isinstance(handler, BatchHandler):
        return BatchingProcessor(concurrency, lambda _: handler, max_messages=handler.max_messages, fifo=fifo)
    if isinstance(handler, Router) and handler.batching:
        return BatchingProcessor(
            concurrency, handler.batch_handler_for, max_messages=handler.max_batch_messages, fifo=fifo
        )
    return None


def _loop_time(monotonic: float) -> float:
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())
