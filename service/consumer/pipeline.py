"""The running pipeline of one Server: its stages, wired for one client, from start to the end of the drain."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.aio.channel import Channel
from service.consumer.deleter import Deleter
from service.consumer.handler import Handler
from service.consumer.health import Health, ShutdownSummary
from service.consumer.ledger import Ledger
from service.consumer.message import Message
from service.consumer.outcome import Outcome
from service.consumer.processors import Processor
from service.consumer.receiver import Receiver
from service.consumer.reporting import ErrorHandler, Observers
from service.consumer.retry import RetryPolicy
from service.consumer.settings import ServerSettings
from service.consumer.visibility import Visibility
from service.errors import HandlerError, LeaseLostError, Retry

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

MAX_RECEIVE_LOOPS = 10
DEFAULT_FLUSH_TIMEOUT_S = 10.0

_log = logging.getLogger("service.consumer")

Middleware = Callable[[Handler], Handler]
"""Wraps the handling step (handler, then deletion or retry delay) of every message; tracing uses it.
The wrapped step raises what the handler raised, after the message was settled."""


@dataclass(frozen=True)
class Parts:
    """What a Server hands its pipeline: the parts that outlive one run."""

    queue_url: str
    settings: ServerSettings
    handler: Handler
    processor: Processor
    ledger: Ledger
    health: Health
    observers: Observers
    on_error: ErrorHandler
    retry_policy: RetryPolicy | None
    middleware: Middleware | None


def receive_loops(processor: Processor, settings: ServerSettings) -> int:
    """Enough receive loops to keep the processor fed, at most MAX_RECEIVE_LOOPS."""
    return min(MAX_RECEIVE_LOOPS, math.ceil(processor.capacity / settings.max_number_of_messages) + 1)


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
        self.messages = Channel[Message]()
        self.receiver = Receiver(
            client,
            parts.queue_url,
            settings,
            ledger=self._ledger,
            messages=self.messages,
            make_message=self._message,
            release=self.release,
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
        )

    def _message(self, raw: dict[str, Any]) -> Message:
        return Message(
            self._parts.queue_url,
            raw,
            visibility_timeout=self._parts.settings.visibility_timeout,
            retry_policy=self._parts.retry_policy,
            change_visibility=self.visibility.change_now,
        )

    async def _handle(self, message: Message) -> None:
        """The handling step (which middleware wraps): the handler, then deletion or the retry delay."""
        started = time.monotonic()
        try:
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
        if isinstance(exc, Retry):
            delay_s: int | None = exc.delay_s
        else:
            delay_s = None if message.retry_policy is None else message.retry_policy.delay_s(message.receive_count)
        if delay_s is not None:
            self.visibility.schedule(message, delay_s, "retry")
            self._observers.retry_scheduled(message, delay_s)
