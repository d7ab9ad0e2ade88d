"""The errors mq-service raises and reports, in one short hierarchy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_VISIBILITY_TIMEOUT = 43200  # 12 hours: SQS's limit, counted from the message's first receipt

# Error codes SQS uses for conditions that go away by themselves; anything else is final.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "RequestTimeout",
    }
)


class MQError(Exception):
    """Base class of every error raised or reported by mq-service."""


class ConfigError(MQError, ValueError):
    """A configuration value is outside what is allowed; names the setting and the allowed values."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"{name}: {value!r} is not allowed; expected {allowed}")
        self.name = name
        self.value = value
        self.allowed = allowed


class SQSError(MQError):
    """SQS refused a call or one entry of a batch call."""

    def __init__(self, code: str, message: str, *, sender_fault: bool, operation: str = "") -> None:
        where = f"{operation}: " if operation else ""
        super().__init__(f"{where}{code}: {message}")
        self.code = code
        self.sqs_message = message
        self.sender_fault = sender_fault
        self.operation = operation

    @property
    def transient(self) -> bool:
        """True when retrying the same request may succeed."""
        return not self.sender_fault or self.code in TRANSIENT_CODES

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], operation: str) -> SQSError:
        """Build from a batch result's failed entry (Id, Code, Message, SenderFault)."""
        return cls(
            str(entry.get("Code", "Unknown")),
            str(entry.get("Message", "")),
            sender_fault=bool(entry.get("SenderFault", True)),
            operation=operation,
        )


class Retry(Exception):
    """Raise from a handler to fail the message and choose its next visibility delay yourself."""

    def __init__(self, delay_s: int, reason: str = "") -> None:
        if not 0 <= delay_s <= MAX_VISIBILITY_TIMEOUT:
            raise ConfigError("delay_s", delay_s, f"an integer from 0 to {MAX_VISIBILITY_TIMEOUT}")
        super().__init__(reason or f"retry in {delay_s}s")
        self.delay_s = delay_s


class Reject(Exception):
    """Raise from a handler to send the message to its queue's dead-letter queue now, without retries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidBody(Reject):
    """The body is not valid JSON, or does not validate into the type asked for: the message is rejected."""


class ReceiveError(MQError):
    """ReceiveMessage (or the start-up check of the queue) failed; the receive loop backs off and tries again.

    `code` is SQS's error code (or the network error's class name); `consecutive` counts failures in a row.
    """

    def __init__(self, reason: str, *, code: str, queue_url: str, consecutive: int = 1) -> None:
        super().__init__(reason)
        self.code = code
        self.queue_url = queue_url
        self.consecutive = consecutive


class DeleteError(MQError):
    """A handled message could not be deleted; it will be received again."""

    def __init__(self, message_id: str, cause: SQSError) -> None:
        super().__init__(f"message {message_id} was handled but not deleted: {cause}")
        self.message_id = message_id
        self.cause = cause


class VisibilityError(MQError):
    """A visibility change (retry delay, heartbeat or hand-back) failed."""

    def __init__(self, message_id: str, cause: SQSError) -> None:
        super().__init__(f"visibility change for message {message_id} failed: {cause}")
        self.message_id = message_id
        self.cause = cause


class LeaseLostError(MQError):
    """The handler was cancelled because its message's lease was lost (`cancel_on_lease_lost`)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"message {message_id}: handler cancelled, its lease was lost")
        self.message_id = message_id


class HandlerError(MQError):
    """A handler raised; the message stays in the queue for a retry."""

    def __init__(self, message_id: str, cause: BaseException) -> None:
        super().__init__(f"handler failed for message {message_id}: {cause!r}")
        self.message_id = message_id
        self.cause = cause


class RouteError(MQError):
    """The Router found no handler for a message."""

    def __init__(self, route: str | None) -> None:
        what = "message has no route" if route is None else f"no handler registered for route {route!r}"
        super().__init__(what)
        self.route = route


class BatchItemFailed(MQError):
    """A batch handler reported this message as failed (returned it among the failures)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"the batch handler reported message {message_id} as failed")
        self.message_id = message_id


class BatchResultError(MQError):
    """A batch handler's answer cannot be read (it names a message not in its batch, or is of the wrong type):
    every message of the batch counts as failed."""


class EnvelopeError(Reject):
    """A message's body claims an SNS, EventBridge or S3 envelope but is malformed: a poison message, rejected
    (sent to the dead-letter queue at once, like any `Reject`)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"malformed {kind} envelope: {reason}")
        self.kind = kind
        self.envelope_reason = reason


class PublishError(SQSError):
    """A message could not be published; `sender_fault` tells whether the request was at fault."""


class ClosedError(MQError):
    """The component was shut down and takes no more work."""


class RejectError(MQError):
    """A rejected message did not reach the dead-letter queue (the queue has none, or the send failed).

    It was not deleted: the retry policy applies to it instead, and it will be received again.
    """

    def __init__(self, message_id: str, reason: str, problem: str, cause: SQSError | None = None) -> None:
        super().__init__(f"message {message_id} was rejected ({reason}) but {problem}; the retry policy applies")
        self.message_id = message_id
        self.reason = reason
        self.cause = cause
