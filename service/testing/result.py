"""What a LocalQueue run saw: every handling of every message, the dead letters, what was left."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.errors import MQError


@dataclass
class Delivery:
    """One receipt of a message and what became of it: `error` is what the handler raised (None: success)."""

    message: Message
    error: BaseException | None
    handler_called: bool
    retry_delay_s: int | None = None

    @property
    def body(self) -> str:
        """The body the handler saw."""
        return self.message.body

    @property
    def message_id(self) -> str:
        """The SQS MessageId."""
        return self.message.message_id

    @property
    def receive_count(self) -> int:
        """Which receipt of the message this was (1 for the first)."""
        return self.message.receive_count


@dataclass(frozen=True)
class DeadLetter:
    """A message found in the dead-letter queue after the run: its body as sent and its String attributes."""

    message_id: str
    body: str
    attributes: Mapping[str, str]


@dataclass
class RunResult:
    """What happened during `LocalQueue.run`, in the order it happened.

    `deliveries`: every receipt that was settled; `handled`, `failed`, `retried` are views of it.
    `dead_lettered`: what is in the dead-letter queue afterwards; `left_in_queue`: messages still in the queue
    (visible, in flight or delayed); `errors`: everything the Server reported (handler failures included);
    `timed_out`: the bound passed before the queue was idle.
    """

    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[MQError] = field(default_factory=list)
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    left_in_queue: int = 0
    timed_out: bool = False

    @property
    def handled(self) -> list[Delivery]:
        """Receipts whose handler returned: those messages were deleted."""
        return [d for d in self.deliveries if d.error is None and d.handler_called]

    @property
    def failed(self) -> list[Delivery]:
        """Receipts that failed (the handler raised, or the message's envelope was malformed)."""
        return [d for d in self.deliveries if d.error is not None]

    @property
    def retried(self) -> list[Delivery]:
        """Failed receipts given a retry delay (`retry_delay_s`) before the next receive."""
        return [d for d in self.deliveries if d.retry_delay_s is not None]

    @property
    def skipped(self) -> list[Delivery]:
        """Receipts deleted without calling the handler (S3 test events)."""
        return [d for d in self.deliveries if d.error is None and not d.handler_called]


class Recorder(PipelineObserver):
    """Observes a Server to fill a RunResult."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.called: set[Message] = set()
        self._last: dict[Message, Delivery] = {}

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        delivery = Delivery(message, error, handler_called=message in self.called)
        self.called.discard(message)
        self._last[message] = delivery
        self.result.deliveries.append(delivery)

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        delivery = self._last.pop(message, None)
        if delivery is not None:
            delivery.retry_delay_s = delay_s

    def deleted(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._last.pop(message, None)

    def error(self, error: MQError) -> None:
        """The Server's error handler."""
        self.result.errors.append(error)
