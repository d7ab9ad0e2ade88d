"""Operations: what the operator's routes need beside the Server: queue views, the DLQ's peek and redrive on an
SQS client of their own (off the hot path), the last handler errors, and one audit line per operator action.

The Runtime starts it with the pipeline and shuts it down at the drain; a redrive runs in its task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.sqs.client import create_client
from service.sqs.queues import DEFAULT_CACHE_TTL_S, QueueView, QueueViews, describe_queue, peek
from service.sqs.redrive import Redrive, RedriveTask

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

ERRORS_KEPT = 50
ERROR_TEXT_LIMIT = 1000
# How long a shutdown lets a client-side redrive finish its batch before cancelling it.
REDRIVE_STOP_TIMEOUT_S = 5.0

_log = logging.getLogger("service.operator")

ActionHook = Callable[[str, str], None]  # (action, outcome: ok, refused or failed)


class NoDeadLetterQueue(Exception):
    """The consumed queue has no RedrivePolicy."""


class RecentErrors(PipelineObserver):
    """Keeps the last handler errors in a bounded ring (one of the Server's observers)."""

    def __init__(self, *, kept: int = ERRORS_KEPT) -> None:
        self._ring: deque[dict[str, Any]] = deque(maxlen=kept)

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        """Keep the error, if any."""
        if error is not None:
            self._ring.append(
                {
                    "message_id": message.message_id,
                    "error_type": type(error).__name__,
                    "error": str(error)[:ERROR_TEXT_LIMIT],
                    "at": time.time(),
                    "receive_count": message.receive_count,
                    "route": message.route,
                }
            )

    def recent(self) -> list[dict[str, Any]]:
        """The kept errors, newest first."""
        return list(reversed(self._ring))


class Operations:
    """The operator's component: start it before serving, shut it down at the drain."""

    def __init__(
        self,
        queue_url: str,
        publish_queue_url: str,
        *,
        on_action: ActionHook | None = None,
        instrument_client: Callable[[SQSClient], None] | None = None,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
    ) -> None:
        self.queue_url = queue_url
        self._on_action = on_action
        self._instrument = instrument_client
        self._client: SQSClient | None = None
        self._resources = AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self.errors = RecentErrors()  # one of the Server's observers
        self.resumed_at = 0.0  # monotonic; liveness counts a stall from here, not from before a pause
        self.views = QueueViews(self.client, queue_url, publish_queue_url, ttl_s=cache_ttl_s)
        self.redrive = Redrive(self.client, self._spawn)

    def client(self) -> SQSClient:
        """The operations' SQS client (once started)."""
        if self._client is None:
            raise RuntimeError("operations are not running")
        return self._client

    async def start(self) -> None:
        """Open the SQS client and the task group."""
        # Off the hot path, with calls the lean client does not speak (message move tasks): aiobotocore's client.
        client = create_client(self.queue_url, max_pool_connections=4, kind="botocore")
        self._client = await self._resources.enter_async_context(client)
        if self._instrument is not None:
            self._instrument(self._client)
        started = asyncio.Event()
        self._runner = asyncio.create_task(self._run(started), name="mq-service operations")
        await started.wait()

    async def shutdown(self, timeout_s: float = REDRIVE_STOP_TIMEOUT_S) -> None:
        """Stop a running client-side redrive after its batch (cancel it after `timeout_s`), close the client."""
        self._closing.set()
        if self._runner is not None:
            current = self.redrive.current
            if current is not None and current.state == "running":
                current.stop_requested = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(current.done.wait(), timeout_s)
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._client = None
        await self._resources.aclose()

    async def dead_letter_queue(self, *, fresh: bool = False) -> QueueView:
        """The consumed queue's dead-letter queue; raises NoDeadLetterQueue."""
        snapshot = await self.views.snapshot(fresh=fresh)
        if snapshot.dead_letter_queue is None:
            raise NoDeadLetterQueue(f"the queue {snapshot.queue.name} has no dead-letter queue (no RedrivePolicy)")
        return snapshot.dead_letter_queue

    async def peek(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` of the DLQ's messages, handed back at once."""
        dlq = await self.dead_letter_queue()
        return await peek(self.client(), dlq.url, limit)

    async def start_redrive(self, *, destination_url: str | None, per_s: int | None) -> RedriveTask:
        """Start moving the DLQ's messages to `destination_url` (None: back to the consumed queue)."""
        dlq = await self.dead_letter_queue(fresh=True)
        to_source = destination_url is None
        destination = await describe_queue(self.client(), destination_url or self.queue_url)
        task = await self.redrive.start(dlq, destination, to_source=to_source, per_s=per_s)
        self.views.forget()
        return task

    def audit(self, action: str, asked: Any, outcome: str, status: int, **details: Any) -> None:
        """One log line and one metric point per operator action."""
        _log.info(
            "operator action %s: %s",
            action,
            outcome,
            extra={"action": action, "asked": asked, "outcome": outcome, "status": status, **details},
        )
        if self._on_action is not None:
            self._on_action(action, "ok" if status < 400 else "refused" if status < 500 else "failed")

    def _spawn(self, run: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self._tasks is None or self._closing.is_set():
            run.close()
            raise RuntimeError("operations are shutting down")
        return self._tasks.create_task(run, name="mq-service redrive")

    async def _run(self, started: asyncio.Event) -> None:
        """Own the task group until shut down."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            started.set()
            try:
                await self._closing.wait()
            finally:
                self._tasks = None


def recent_errors(operations: Operations) -> Sequence[dict[str, Any]]:
    """The last handler errors, newest first (none before the pipeline was built)."""
    return [] if operations.errors is None else operations.errors.recent()
