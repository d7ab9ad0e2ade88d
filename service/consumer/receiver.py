"""The receive side: long-polling ReceiveMessage loops, paced by the pipeline's free capacity and a rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from service.aio.channel import Channel
from service.aio.rate import RateLimit
from service.consumer.ledger import Ledger
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.consumer.reporting import ErrorHandler
from service.consumer.settings import ServerSettings
from service.errors import ReceiveError
from service.sqs.batch import error_from_exception

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

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

MessageFactory = Callable[[dict[str, Any], float], Message]
"""Builds a Message from a received entry and the monotonic time of its receive."""

_log = logging.getLogger("service.consumer")


class Receiver:
    """Checks the queue once (its attributes go to `on_queue_attributes`), then runs receive loops; each
    reserves credits and rate tokens, then long-polls.

    Received messages go into `messages`; while paused or stopping, what a call in flight brings is
    handed back at once through `release` instead. When the rate limit changed while a call was in flight,
    what it brings goes on only as the new rate allows: the messages wait in the ledger (under the visibility
    heartbeat, handed back by a pause or a drain like any waiting message), so a lowered limit holds at once.
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        settings: ServerSettings,
        *,
        ledger: Ledger,
        messages: Channel[Message],
        make_message: MessageFactory,
        release: Callable[[Message], None],
        on_queue_attributes: Callable[[Mapping[str, str]], None] | None = None,
        observer: PipelineObserver,
        on_error: ErrorHandler,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._ledger = ledger
        self._messages = messages
        self._make_message = make_message
        self._release = release
        self._on_queue_attributes = on_queue_attributes
        self._observer = observer
        self._on_error = on_error
        self._max_messages = settings.max_number_of_messages
        self._backoff = settings.receive_backoff
        self.rate = RateLimit(settings.max_messages_per_s, burst=settings.max_number_of_messages)
        self._failures = 0
        self._failing_since = 0.0
        self._resume_at = 0.0
        self._stopping = False
        self._stopped = asyncio.Event()
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._loops: list[asyncio.Task[None]] = []
        self._polling: set[asyncio.Task[None]] = set()
        names = list(dict.fromkeys([*settings.attribute_names, *REQUIRED_ATTRIBUTE_NAMES]))
        self._request: dict[str, Any] = {
            "QueueUrl": queue_url,
            "WaitTimeSeconds": settings.wait_time_seconds,
            "VisibilityTimeout": settings.visibility_timeout,
            "AttributeNames": names,
            "MessageAttributeNames": list(settings.message_attribute_names),
        }

    @property
    def paused(self) -> bool:
        """True between `pause` and `resume`."""
        return not self._unpaused.is_set()

    @property
    def polling(self) -> int:
        """Receive calls in flight."""
        return len(self._polling)

    async def run(self, loops: int) -> None:
        """Check the queue, then receive until stopped (returns once the last call in flight returned)."""
        async with asyncio.TaskGroup() as group:
            check = group.create_task(self._check_queue())
            self._loops = [check]
            await asyncio.wait({check})
            if check.cancelled() or self._stopping:
                return
            self._loops = [group.create_task(self._loop()) for _ in range(loops)]

    def pause(self) -> None:
        """Issue no receive call until `resume`; what calls in flight bring is handed back."""
        self._unpaused.clear()

    def resume(self) -> None:
        """Receive again."""
        self._unpaused.set()

    def stop_receiving(self) -> None:
        """Issue no more receive calls; loops not inside a call end at once, the others when their call returns."""
        self._stopping = True
        self._stopped.set()
        for loop in self._loops:
            if loop not in self._polling:
                loop.cancel()

    def abandon(self) -> None:
        """Cancel the receive calls still in flight (what SQS hands them meanwhile stays invisible for a while)."""
        self.stop_receiving()
        for loop in self._loops:
            loop.cancel()

    async def _check_queue(self) -> None:
        """GetQueueAttributes until it succeeds: proves the queue exists and the credentials work, at once."""
        while not self._stopping:
            started = time.monotonic()
            try:
                response = await self._client.get_queue_attributes(
                    QueueUrl=self._queue_url, AttributeNames=["QueueArn", "RedrivePolicy"]
                )
            except Exception as exc:
                self._failed(exc, "GetQueueAttributes", time.monotonic() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), max(0.0, self._resume_at - time.monotonic()))
                continue
            self._recovered("GetQueueAttributes")
            if self._on_queue_attributes is not None:
                self._on_queue_attributes({str(k): v for k, v in response.get("Attributes", {}).items()})
            self._observer.queue_checked()
            return

    async def _loop(self) -> None:
        while not self._stopping:
            # After a failure every loop waits out the same backoff: an outage costs one call per period.
            pause_s = self._resume_at - time.monotonic()
            if pause_s > 0:
                await asyncio.sleep(pause_s)
                continue
            await self._unpaused.wait()
            await self._receive_once()

    async def _receive_once(self) -> None:
        credits = await self._ledger.reserve(self._max_messages)
        try:
            wanted = await self.rate.take(credits)
        except asyncio.CancelledError:
            self._ledger.unreserve(credits)
            raise
        self._ledger.unreserve(credits - wanted)
        generation = self.rate.generation
        loop = asyncio.current_task()
        assert loop is not None
        self._polling.add(loop)
        try:
            raw = await self._receive(wanted)
        except asyncio.CancelledError:
            self._ledger.unreserve(wanted)
            raise
        finally:
            self._polling.discard(loop)
        same_rate = self.rate.generation == generation
        if raw is None:
            if same_rate:
                self.rate.give(wanted)
            self._ledger.unreserve(wanted)
            return
        messages = self._admit(raw, wanted)
        if same_rate:
            self.rate.give(wanted - len(messages))
            self._hand_on(messages)
        else:  # tokens taken at an older rate do not count: each message takes one at the current rate
            await self._paced(messages)

    def _admit(self, raw: tuple[list[dict[str, Any]], float], reserved: int) -> list[Message]:
        raw_messages, duration_s = raw
        received_at = time.monotonic()  # one time for the whole receive: batching tells receives apart by it
        messages = [self._make_message(item, received_at) for item in raw_messages]
        self._ledger.admit(messages, reserved)
        self._observer.received(messages, duration_s)
        return messages

    async def _paced(self, messages: list[Message]) -> None:
        """Hand the messages on as the rate limit gives tokens; what is left when cancelled goes back."""
        pending = messages
        try:
            while pending:
                if self._stopping or self.paused or self._messages.closed:
                    break  # handed back below, at once
                count = await self.rate.take(len(pending))
                self._hand_on(pending[:count])
                pending = pending[count:]
        except asyncio.CancelledError:
            for message in pending:
                self._release(message)
            raise
        self._hand_on(pending)

    def _hand_on(self, messages: list[Message]) -> None:
        hand_back = self._stopping or self.paused or self._messages.closed
        for message in messages:
            if hand_back:
                self._release(message)  # a call that was in flight when the pause or the drain began
            else:
                self._messages.put_nowait(message)

    async def _receive(self, max_messages: int) -> tuple[list[dict[str, Any]], float] | None:
        """The received messages and the call's duration, or None when the call failed (reported here)."""
        started = time.monotonic()
        try:
            response = await self._client.receive_message(MaxNumberOfMessages=max_messages, **self._request)
        except Exception as exc:
            self._failed(exc, "ReceiveMessage", time.monotonic() - started)
            return None
        self._recovered("ReceiveMessage")
        messages: list[dict[str, Any]] = response.get("Messages", [])  # type: ignore[assignment]
        return messages, time.monotonic() - started

    def _recovered(self, operation: str) -> None:
        """A call succeeded: after failures, say so once, with how long SQS was failing."""
        if self._failures:
            down_s = time.monotonic() - self._failing_since
            _log.info(
                "SQS answers again: %s succeeded after %d failed calls over %.1f s",
                operation,
                self._failures,
                down_s,
                extra={"queue_url": self._queue_url, "failed_calls": self._failures, "down_s": round(down_s, 3)},
            )
        self._failures = 0

    def _failed(self, exc: Exception, operation: str, duration_s: float) -> None:
        error = error_from_exception(exc, operation)
        if error.code in _MISSING_QUEUE_CODES:
            reason = f"queue {self._queue_url} does not exist ({error.code})"
        elif error.code in _CREDENTIAL_CODES:
            reason = f"SQS rejected the credentials for queue {self._queue_url} ({error.code}: {error.sqs_message})"
        else:
            reason = f"queue {self._queue_url}: {error}"
        if not self._failures:
            self._failing_since = time.monotonic() - duration_s
        self._failures += 1
        failure = ReceiveError(reason, code=error.code, queue_url=self._queue_url, consecutive=self._failures)
        self._resume_at = max(self._resume_at, time.monotonic() + self._backoff.delay_s(self._failures - 1))
        self._observer.receive_failed(failure, duration_s)
        self._on_error(failure)
