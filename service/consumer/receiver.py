"""The receive side: long-polling ReceiveMessage loops, paced by the pipeline's free capacity."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from service.aio.backoff import Backoff
from service.consumer.health import Health
from service.consumer.observer import PipelineObserver
from service.errors import ReceiveError
from service.sqs.batch import error_from_exception

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

_log = logging.getLogger("service.receiver")

# Always asked for, whatever the user asks for:
# the retry policy, the 12-hour cap, FIFO partitioning and tracing need them.
REQUIRED_ATTRIBUTE_NAMES = (
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SentTimestamp",
    "MessageGroupId",
    "AWSTraceHeader",
)
_MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "InvalidSecurity",
}


class Capacity:
    """Credits for messages in the pipeline: a receive takes credits first, a settled message gives one back.

    Waiters are served in order, so a loop waiting for a full batch is not starved by smaller takes.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, want: int) -> int:
        """Wait until `want` credits (at most the total) are free, and take them."""
        want = min(want, self.total)
        if not self._waiters and self.free >= want:
            self.free -= want
            return want
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((want, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give(want)  # granted just as we were cancelled
            elif (want, waiter) in self._waiters:
                self._waiters.remove((want, waiter))
            raise
        return want

    def give(self, count: int) -> None:
        """Return `count` credits and wake the waiters they satisfy."""
        self.free += count
        while self._waiters and self._waiters[0][0] <= self.free:
            want, waiter = self._waiters.popleft()
            if not waiter.done():
                self.free -= want
                waiter.set_result(None)


class Receiver:
    """Runs `loops` receive loops; each takes up to `max_number_of_messages` credits, then long-polls."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        capacity: Capacity,
        dispatch: Callable[[list[dict[str, Any]], float], None],
        health: Health,
        observer: PipelineObserver,
        max_number_of_messages: int,
        wait_time_seconds: int,
        visibility_timeout: int,
        attribute_names: Sequence[str],
        message_attribute_names: Sequence[str],
        backoff: Backoff,
    ) -> None:
        self._client = client
        self._capacity = capacity
        self._dispatch = dispatch
        self._health = health
        self._observer = observer
        self._max_messages = max_number_of_messages
        self._backoff = backoff
        self._resume_at = 0.0
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []
        self._polling: set[asyncio.Task[Any]] = set()
        names = list(dict.fromkeys([*attribute_names, *REQUIRED_ATTRIBUTE_NAMES]))
        self._request: dict[str, Any] = {
            "QueueUrl": queue_url,
            "WaitTimeSeconds": wait_time_seconds,
            "VisibilityTimeout": visibility_timeout,
            "AttributeNames": names,
            "MessageAttributeNames": list(message_attribute_names),
        }

    async def run(self, loops: int) -> None:
        """Receive until stopped or cancelled."""
        async with asyncio.TaskGroup() as group:
            self._loops = [group.create_task(self._loop()) for _ in range(loops)]

    def stop_receiving(self) -> None:
        """Issue no more receive calls; loops not inside a call end at once."""
        self._stopping = True
        for loop in self._loops:
            if loop not in self._polling:
                loop.cancel()

    async def abandon(self, grace_s: float) -> None:
        """Give the calls still in flight `grace_s` to bring their messages in (to be handed back), then cancel them.

        A call SQS has answered but whose answer is cancelled on its way leaves its messages invisible until
        their visibility timeout: the grace saves those; a long poll on an empty queue is not waited out.
        """
        self.stop_receiving()
        if self._polling and grace_s > 0:
            await asyncio.wait(set(self._polling), timeout=grace_s)
        for loop in self._loops:
            loop.cancel()

    async def _loop(self) -> None:
        while not self._stopping:
            # After a failure every loop waits out the same backoff: an outage costs one call per period.
            pause_s = self._resume_at - time.monotonic()
            if pause_s > 0:
                await asyncio.sleep(pause_s)
                continue
            credits = await self._capacity.take(self._max_messages)
            started = time.monotonic()
            loop = asyncio.current_task()
            assert loop is not None
            self._polling.add(loop)
            try:
                messages = await self._receive(credits)
            except asyncio.CancelledError:
                self._capacity.give(credits)
                raise
            finally:
                self._polling.discard(loop)
            self._capacity.give(credits - len(messages or ()))
            if messages is not None:
                self._dispatch(messages, time.monotonic() - started)

    async def _receive(self, max_messages: int) -> list[dict[str, Any]] | None:
        """The received messages, or None when the call failed (reported here)."""
        started = time.monotonic()
        try:
            response = await self._client.receive_message(MaxNumberOfMessages=max_messages, **self._request)
        except Exception as exc:
            self._failed(exc, time.monotonic() - started)
            return None
        messages: list[dict[str, Any]] = response.get("Messages", [])  # type: ignore[assignment]
        self._health.receive_succeeded(len(messages))
        return messages

    def _failed(self, exc: Exception, duration_s: float) -> None:
        error = error_from_exception(exc, "ReceiveMessage")
        if error.code in _MISSING_QUEUE_CODES:
            reason = f"queue {self._request['QueueUrl']} does not exist ({error.code})"
        elif error.code in _CREDENTIAL_CODES:
            reason = f"SQS rejected the credentials ({error.code}: {error.sqs_message})"
        else:
            reason = str(error)
        failure = ReceiveError(reason)
        failures = self._health.receive_failed(reason)
        self._resume_at = max(self._resume_at, time.monotonic() + self._backoff.delay_s(failures - 1))
        self._observer.receive_failed(failure, duration_s)
        # One line when a failure streak starts and then every 10th, so an outage does not flood the logs.
        if failures == 1 or failures % 10 == 0:
            _log.warning("receive failed (%d in a row): %s", failures, reason)
