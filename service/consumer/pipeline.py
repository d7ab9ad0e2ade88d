"""The running pipeline of one Server: its stages, wired for one client, from start to the end of the drain."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.aio.budget import Share
from service.aio.channel import Channel
from service.consumer.batching import BatchHandler, ItemOutcome
from service.consumer.deleter import Deleter
from service.consumer.gathering import BatchingProcessor
from service.consumer.handler import Handler
from service.consumer.health import Health, ShutdownSummary
from service.consumer.ledger import Ledger
from service.consumer.message import Message
from service.consumer.outcome import Outcome
from service.consumer.processors import Processor
from service.consumer.receiver import Receiver
from service.consumer.rejecter import Rejecter
from service.consumer.reporting import ErrorHandler, Observers
from service.consumer.retry import RetryPolicy
from service.consumer.settings import ServerSettings
from service.consumer.visibility import Visibility
from service.errors import HandlerError, LeaseLostError, Reject, Retry
from service.sqs.envelopes import S3TestEvent, envelope_kinds
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

MAX_RECEIVE_LOOPS = 10
DEFAULT_FLUSH_TIMEOUT_S = 10.0

_log = logging.getLogger("service.consumer")

Middleware = Callable[[Handler], Handler]
"""Wraps the handling step (handler, then deletion or retry delay) of every message; tracing uses it.
The wrapped step raises what the handler raised, after the message was settled."""

BatchStep = Callable[[BatchHandler, list[Message]], Awaitable[list[ItemOutcome]]]
"""The handling step of a batch: the batch handler, then each message's deletion, retry delay or hand-back;
it returns each message's outcome (None for success)."""
BatchMiddleware = Callable[[BatchStep], BatchStep]
"""Wraps the handling step of every batch, as `Middleware` does for single messages; tracing uses it."""


@dataclass(frozen=True)
class Parts:
    """What a Server hands its pipeline: the parts that outlive one run."""

    queue_url: str
    settings: ServerSettings
    handler: Handler
    processor: Processor | BatchingProcessor
    ledger: Ledger
    health: Health
    observers: Observers
    on_error: ErrorHandler
    retry_policy: RetryPolicy | None
    middleware: Middleware | None
    batch_middleware: BatchMiddleware | None = None
    budget: Share | None = None  # slots shared with other Servers: taken before a handler starts


def receive_loops(capacity: int, settings: ServerSettings) -> int:
    """Enough receive loops to keep a processor of `capacity` fed, at most MAX_RECEIVE_LOOPS."""
    return min(MAX_RECEIVE_LOOPS, math.ceil(capacity / settings.max_number_of_messages) + 1)


class Pipeline:
    """Receive -> process -> delete for one client (the Server docstring describes it); built per run.

    It is the processor's `Steps`: `process` runs a message's handling step and reports its `Outcome`,
    `release` hands a message back unhandled, `held_back` reports a message over its group's cap.
    """

    def __init__(self, client: SQSClient, parts: Parts) -> None:
        self._parts = parts
        self._ledger = parts.ledger
        self._observers = parts.observers
        self._on_error = parts.on_error
        settings = parts.settings
        self._step = self._handle if parts.middleware is None else parts.middleware(self._handle)
        self._batch_step = (
            self._handle_batch if parts.batch_middleware is None else parts.batch_middleware(self._handle_batch)
        )
        self._fifo = is_fifo(parts.queue_url)
        self._envelope_kinds = envelope_kinds(settings.envelope)
        self.cancelled = 0
        # With cancel_on_lease_lost: the task running each message's handler, and those cancelled for a lost lease.
        self._cancel_on_lease_lost = settings.cancel_on_lease_lost
        self._handler_tasks: dict[Message, asyncio.Task[Any]] = {}
        self._cancelled_for_lease: set[Message] = set()
        self.visibility = Visibility(
            client,
            parts.queue_url,
            visibility_timeout=settings.visibility_timeout,
            observer=self._observers,
            on_error=self._on_error,
            outstanding=self._ledger.outstanding,
            on_lease_lost=self._cancel_handler if settings.cancel_on_lease_lost else None,
        )
        self.deleter = Deleter(
            client,
            parts.queue_url,
            batch_max_messages=settings.batch_delete_max_messages,
            interval_s=settings.effective_deletion_interval_s,
            observer=self._observers,
            on_error=self._on_error,
            lose_lease=self.visibility.lose_lease,
        )
        self.rejecter = Rejecter(
            client,
            parts.queue_url,
            interval_s=settings.effective_deletion_interval_s,
            observer=self._observers,
            on_error=self._on_error,
            delete=self.deleter.put_nowait,
            retry=self._retry,
        )
        self.messages = Channel[Message]()
        self.receiver = Receiver(
            client,
            parts.queue_url,
            settings,
            ledger=self._ledger,
            messages=self.messages,
            make_message=self._message,
            release=self.release,
            on_queue_attributes=self.rejecter.configure,
            observer=self._observers,
            on_error=self._on_error,
        )

    def pause(self) -> None:
        """Stop receiving; hand back what waits for a handler (running handlers finish as usual)."""
        self.receiver.pause()
        for message in self._ledger.waiting():
            self.release(message)

    def release(self, message: Message, delay_s: int = 0) -> None:
        """Hand a message back unhandled: visible again in `delay_s` seconds (at once by default)."""
        if self._ledger.settle(message):
            self.visibility.schedule(message, delay_s, "release")

    def held_back(self, message: Message) -> None:
        """A message over its group's cap (the processor holds it or hands it back)."""
        self._observers.held_back(message)

    async def process(self, message: Message) -> Outcome:
        """What the processor calls for each message: the handling step, with hand-back on cancellation."""
        budget = self._parts.budget
        if budget is None:
            return await self._process(message)
        await budget.acquire()
        try:
            return await self._process(message)
        finally:
            budget.release()

    async def process_batch(self, handler: BatchHandler, batch: list[Message]) -> set[Message]:
        """What the batching processor calls for each batch; returns the messages that succeeded."""
        budget = self._parts.budget
        if budget is None:
            return await self._process_batch(handler, batch)
        await budget.acquire()
        try:
            return await self._process_batch(handler, batch)
        finally:
            budget.release()

    async def _process(self, message: Message) -> Outcome:
        if not self._ledger.start(message):
            return Outcome.RELEASED  # handed back while it waited
        try:
            await self._step(message)
        except asyncio.CancelledError:
            if self._ledger.is_handling(message):
                self.cancelled += 1
                self.release(message)
            raise
        except Exception as exc:
            if self._ledger.is_handling(message):  # a middleware failed outside the handler
                self._on_error(HandlerError(message.message_id, exc))
                self._ledger.settle(message)  # not handled: its visibility timeout brings it back
            return Outcome.FAILED
        return Outcome.SUCCEEDED

    async def _process_batch(self, handler: BatchHandler, batch: list[Message]) -> set[Message]:
        started = [message for message in batch if self._ledger.start(message)]
        if not started:
            return set()  # all handed back while they were gathered
        try:
            outcomes = await self._batch_step(handler, started)
        except asyncio.CancelledError:
            for message in started:
                if self._ledger.is_handling(message):
                    self.cancelled += 1
                    self.release(message)
            raise
        return {message for message, outcome in zip(started, outcomes, strict=True) if outcome is None}

    def summary(self, *, timed_out: bool, duration_s: float) -> ShutdownSummary:
        """What became of the messages so far."""
        h = self._parts.health
        return ShutdownSummary(
            handled=h.handled,
            failed=h.failed,
            deleted=h.deleted,
            released=h.released,
            cancelled=self.cancelled,
            timed_out=timed_out,
            duration_s=round(duration_s, 3),
            rejected=h.rejected,
        )

    def _message(self, raw: dict[str, Any], received_at: float) -> Message:
        message = Message(
            self._parts.queue_url,
            raw,
            received_at=received_at,
            visibility_timeout=self._parts.settings.visibility_timeout,
            retry_policy=self._parts.retry_policy,
            change_visibility=self.visibility.change_now,
        )
        body = raw.get("Body")
        if self._envelope_kinds and body and body[0] == "{":  # envelopes are JSON objects: others cost nothing
            message.open_envelope(self._envelope_kinds)
        return message

    def _admit(self, message: Message) -> bool:
        """Whether an enveloped message goes to the handler: not an S3 test event; a malformed one raises."""
        if message.envelope_error is not None:
            raise message.envelope_error
        if isinstance(message.envelope, S3TestEvent):
            _log.info(
                "deleting an s3:TestEvent without calling the handler",
                extra={"message_id": message.message_id, "bucket": message.envelope.bucket},
            )
            return False
        return True

    async def _handle(self, message: Message) -> None:
        """The handling step (which middleware wraps): the handler, then deletion or the retry delay."""
        started = time.monotonic()
        try:
            if (message.envelope is None and message.envelope_error is None) or self._admit(message):
                if self._cancel_on_lease_lost:
                    await self._cancellable(message)
                else:
                    await self._parts.handler(message)
        except asyncio.CancelledError:
            raise
        except LeaseLostError as exc:
            self._ledger.settle(message)  # already logged and counted; SQS no longer honours its handle
            self._observers.handled(message, time.monotonic() - started, exc)
            raise
        except Exception as exc:
            self._ledger.settle(message)
            self._failed(message, exc, time.monotonic() - started)
            raise
        self._ledger.settle(message)
        self._observers.handled(message, time.monotonic() - started, None)
        try:
            await self.deleter.put(message)
        except asyncio.CancelledError:
            self.deleter.put_nowait(message)  # handled: it must still be deleted
            raise

    async def _handle_batch(self, handler: BatchHandler, batch: list[Message]) -> list[ItemOutcome]:
        """The handling step of a batch (which batch middleware wraps): the batch handler, then each message's
        deletion or retry delay; on a FIFO queue a group's messages after its first failure are handed back."""
        started = time.monotonic()
        outcomes = await self._run_batch(handler, batch)
        duration_s = time.monotonic() - started
        stopped: set[str] = set()  # FIFO groups with a failure earlier in this batch
        for i, (message, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            group_id = message.group_id if self._fifo else None
            if group_id is not None and group_id in stopped:
                outcomes[i] = _HANDED_BACK
                self.release(message)
            elif outcome is None:
                self._ledger.settle(message)
                self._observers.handled(message, duration_s, None)
                self.deleter.put_nowait(message)
            else:
                if group_id is not None:
                    stopped.add(group_id)
                self._ledger.settle(message)
                self._failed(message, outcome, duration_s)
        return outcomes

    async def _run_batch(self, handler: BatchHandler, batch: list[Message]) -> list[ItemOutcome]:
        """The batch handler's outcomes; enveloped messages it must not see (an S3 test event, a malformed
        envelope) are settled without it, as `_admit` decides for single messages."""
        if all(message.envelope is None and message.envelope_error is None for message in batch):
            return await handler.run(batch)
        settled: dict[Message, ItemOutcome] = {}
        for message in batch:
            if message.envelope is not None or message.envelope_error is not None:
                try:
                    if not self._admit(message):
                        settled[message] = None
                except Reject as exc:
                    settled[message] = exc
        admitted = [message for message in batch if message not in settled]
        ran = dict(zip(admitted, await handler.run(admitted) if admitted else [], strict=True))
        return [settled[message] if message in settled else ran[message] for message in batch]

    async def _cancellable(self, message: Message) -> None:
        """The handler, cancelled (LeaseLostError) if the message's lease is lost meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        self._handler_tasks[message] = task
        try:
            await self._parts.handler(message)
        except asyncio.CancelledError:
            if message in self._cancelled_for_lease:
                self._cancelled_for_lease.discard(message)
                if task.uncancel() == 0:  # only ours: the handler stops, the pipeline goes on
                    raise LeaseLostError(message.message_id) from None
            raise
        finally:
            del self._handler_tasks[message]
            if message in self._cancelled_for_lease:  # the handler swallowed our cancellation: take it back
                self._cancelled_for_lease.discard(message)
                task.uncancel()

    def _cancel_handler(self, message: Message) -> None:
        task = self._handler_tasks.get(message)
        if task is not None and message not in self._cancelled_for_lease:
            self._cancelled_for_lease.add(message)
            task.cancel()

    def _failed(self, message: Message, exc: Exception, duration_s: float) -> None:
        self._observers.handled(message, duration_s, exc)
        self._on_error(HandlerError(message.message_id, exc))
        if isinstance(exc, Reject):
            self.rejecter.reject(message, exc)  # to the dead-letter queue, or `_retry` when there is none
        else:
            self._retry(message, exc)

    def _retry(self, message: Message, exc: Exception | None = None) -> None:
        """Schedule the failed message's next delivery: its `Retry` delay, else the retry policy's."""
        if isinstance(exc, Retry):
            delay_s: int | None = exc.delay_s
        else:
            delay_s = None if message.retry_policy is None else message.retry_policy.delay_s(message.receive_count)
        if delay_s is not None:
            self.visibility.schedule(message, delay_s, "retry")
            self._observers.retry_scheduled(message, delay_s)


# The outcome of a FIFO message handed back because an earlier message of its group failed in the same batch.
_HANDED_BACK = RuntimeError("handed back: an earlier message of its group failed in this batch")
