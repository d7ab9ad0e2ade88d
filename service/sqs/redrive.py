"""Redrive: move a dead-letter queue's messages back to their source queue (or to another queue), one at a time.

Where the server has StartMessageMoveTask (real SQS) SQS moves them, and ListMessageMoveTasks reports the
progress; where it has not (moto answers 500 "not implemented", fauxqs lacks it) the move is done here, batch
by batch (`service.sqs.move`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from service.errors import SQSError
from service.sqs.move import DEFAULT_MOVE_VISIBILITY_S, ClientSideMove, MoveCounts, MoveFailed
from service.sqs.queues import QueueView, sqs_call

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

RedriveState = Literal["running", "completed", "cancelled", "failed"]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]

POLL_INTERVAL_S = 1.0
# SQS's states of a message move task, in ours (CANCELLING is still running).
_SQS_STATES: dict[str, RedriveState] = {
    "RUNNING": "running",
    "CANCELLING": "running",
    "COMPLETED": "completed",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
}
# How servers without message move tasks answer StartMessageMoveTask.
_UNSUPPORTED_CODES = frozenset({"InvalidAction", "UnknownOperationException", "UnsupportedOperation", "NotImplemented"})

_log = logging.getLogger("service.redrive")


class RedriveConflict(Exception):
    """A redrive is already running."""


@dataclass
class RedriveTask:
    """One redrive and its progress. Times are epoch seconds."""

    source: QueueView
    destination: str  # "source" or a queue URL
    max_messages_per_s: int | None
    mode: Literal["sqs", "client"] = "client"
    state: RedriveState = "running"
    counts: MoveCounts = field(default_factory=MoveCounts)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    failure: str | None = None
    task_handle: str | None = None
    stop_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(self, state: RedriveState, failure: str | None = None) -> None:
        """Record the end."""
        self.state, self.failure, self.finished_at = state, failure, time.time()
        self.done.set()

    def as_dict(self) -> dict[str, Any]:
        """The `GET /dlq/redrive` answer."""
        return {
            "state": self.state,
            "moved": self.counts.moved,
            "to_move": self.counts.to_move,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "failure": self.failure,
            "mode": self.mode,
            "source": self.source.url,
            "destination": self.destination,
            "max_messages_per_s": self.max_messages_per_s,
        }


class Redrive:
    """Starts, follows and cancels redrives, at most one at a time; the runs go to `spawn` (a task group)."""

    def __init__(
        self,
        client: Callable[[], SQSClient],
        spawn: Spawn,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        move_visibility_s: int = DEFAULT_MOVE_VISIBILITY_S,
    ) -> None:
        self._client = client
        self._spawn = spawn
        self._poll_interval_s = poll_interval_s
        self._move_visibility_s = move_visibility_s
        self.current: RedriveTask | None = None

    @property
    def running(self) -> bool:
        """True while a redrive runs."""
        return self.current is not None and self.current.state == "running"

    async def start(
        self, source: QueueView, destination: QueueView, *, to_source: bool, per_s: int | None
    ) -> RedriveTask:
        """Start moving `source`'s messages to `destination` (`to_source`: the queues they came from)."""
        if self.running:
            raise RedriveConflict("a redrive is already running: cancel it first (DELETE /dlq/redrive)")
        task = RedriveTask(source, "source" if to_source else destination.url, per_s)
        task.counts.to_move = source.visible
        self.current = task
        try:
            task.task_handle = await self._start_on_server(task, None if to_source else destination.arn)
        except SQSError as error:
            if not _unsupported(error):
                self.current = None
                raise
            _log.warning(
                "this SQS server has no message move tasks (%s): the service moves the messages itself",
                error.code,
                extra={"redrive": task.as_dict()},
            )
            self._spawn(self._move_here(task, destination.url))
        else:
            task.mode = "sqs"
            self._spawn(self._follow(task))
        return task

    async def cancel(self, wait_s: float = 10.0) -> RedriveTask | None:
        """Stop the running redrive (after its current batch); returns it, or None when none runs."""
        task = self.current
        if task is None or task.state != "running":
            return None
        task.stop_requested = True
        if task.mode == "sqs" and task.task_handle is not None:
            await sqs_call(
                "CancelMessageMoveTask", self._client().cancel_message_move_task(TaskHandle=task.task_handle)
            )
        with contextlib.suppress(TimeoutError):  # still stopping: GET /dlq/redrive shows when it did
            await asyncio.wait_for(task.done.wait(), wait_s)
        return task

    async def _start_on_server(self, task: RedriveTask, destination_arn: str | None) -> str:
        options: dict[str, Any] = {"SourceArn": task.source.arn}
        if destination_arn is not None:
            options["DestinationArn"] = destination_arn
        if task.max_messages_per_s is not None:
            options["MaxNumberOfMessagesPerSecond"] = task.max_messages_per_s
        response = await sqs_call("StartMessageMoveTask", self._client().start_message_move_task(**options))
        return str(response["TaskHandle"])

    async def _move_here(self, task: RedriveTask, destination_url: str) -> None:
        move = ClientSideMove(
            self._client(),
            task.source.url,
            destination_url,
            per_s=task.max_messages_per_s,
            visibility_timeout_s=self._move_visibility_s,
        )
        try:
            await move.run(task.counts, lambda: task.stop_requested)
        except asyncio.CancelledError:
            task.finish("cancelled", "the service shut down")
            raise
        except Exception as error:  # MoveFailed, SQSError, or a bug: the task reports it, the service goes on
            _log.warning("redrive failed: %s", error, extra={"redrive": task.as_dict()})
            task.finish("failed", str(error) if isinstance(error, MoveFailed | SQSError) else repr(error))
        else:
            task.finish("cancelled" if task.stop_requested else "completed")

    async def _follow(self, task: RedriveTask) -> None:
        """Poll ListMessageMoveTasks until SQS's task ends."""
        while True:
            try:
                state = await self._poll(task)
            except SQSError as error:
                _log.warning("could not read the redrive's progress: %s", error)
                state = "running"
            except asyncio.CancelledError:
                task.done.set()  # SQS's task goes on; this pod stops following it
                raise
            if state != "running":
                return
            await asyncio.sleep(self._poll_interval_s)

    async def _poll(self, task: RedriveTask) -> RedriveState:
        response = await sqs_call(
            "ListMessageMoveTasks",
            self._client().list_message_move_tasks(SourceArn=task.source.arn, MaxResults=10),
        )
        results: list[dict[str, Any]] = list(response.get("Results", []))
        found = next((r for r in results if r.get("TaskHandle") == task.task_handle), results[0] if results else {})
        task.counts.moved = int(found.get("ApproximateNumberOfMessagesMoved", task.counts.moved))
        task.counts.to_move = int(found.get("ApproximateNumberOfMessagesToMove", task.counts.to_move))
        state = _SQS_STATES.get(str(found.get("Status", "RUNNING")), "running")
        if state != "running":
            reason = found.get("FailureReason")
            task.finish(state, None if reason is None else str(reason))
        return state


def _unsupported(error: SQSError) -> bool:
    """True when the server has no message move tasks: it says so, or answers with no SQS error at all (botocore
    then names the error by its HTTP status; moto's bare 500 page). Real SQS's own failures carry a code."""
    text = error.sqs_message.lower()
    return (
        error.code in _UNSUPPORTED_CODES
        or error.code.isdigit()
        or "not been implemented" in text
        or "not implemented" in text
    )
