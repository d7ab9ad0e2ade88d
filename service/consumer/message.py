"""Message: one received SQS message and what the pipeline knows about it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from service.consumer.bodies import decode_json, validate_body
from service.consumer.retry import DEFAULT_RETRY_POLICY, MAX_VISIBILITY_TIMEOUT, RetryPolicy
from service.errors import EnvelopeError
from service.sqs.envelopes import Envelope, open_envelope

if TYPE_CHECKING:
    from types_aiobotocore_sqs.type_defs import MessageTypeDef

MESSAGE_ATTRIBUTE_NAME_ROUTE = "route"
MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY = "partition_key"

# Seconds kept in hand below SQS's 12-hour limit, for clock skew between us and SQS.
_VISIBILITY_LIMIT_MARGIN_S = 60

VisibilityChanger = Callable[["Message", int], Awaitable[None]]
T = TypeVar("T")
_UNDECODED: Any = object()  # `json()` not called yet (None is a valid JSON body)


@dataclass(frozen=True)
class S3Payload:
    """Where a message's body was stored: an S3 object the sender offloaded it to, and its size in bytes."""

    bucket: str
    key: str
    size: int


class Message:
    """One received SQS message.

    `visibility_deadline` is the monotonic time at which SQS makes the message visible again
    unless it is deleted or its visibility is changed first.
    """

    __slots__ = (
        "_change_visibility",
        "_json",
        "_lease_lost",
        "_lease_lost_event",
        "_raw_body",
        "as_received",
        "envelope",
        "envelope_error",
        "queue_url",
        "raw",
        "received_at",
        "retry_policy",
        "s3_payload",
        "visibility_deadline",
    )

    def __init__(
        self,
        queue_url: str,
        raw: MessageTypeDef | Mapping[str, Any],
        *,
        visibility_timeout: int,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        change_visibility: VisibilityChanger | None = None,
        received_at: float | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.raw: Mapping[str, Any] = raw
        # What SQS delivered, kept when a payload resolver replaces `raw`: a dead-letter copy is made from it.
        self.as_received: Mapping[str, Any] = raw
        self._json: Any = _UNDECODED
        self.retry_policy = retry_policy
        self.received_at = time.monotonic() if received_at is None else received_at
        self.visibility_deadline = self.received_at + visibility_timeout
        self._change_visibility = change_visibility
        self._lease_lost = False
        self._lease_lost_event: asyncio.Event | None = None  # made when a handler first waits for it
        # Set when the body came from S3 (an SQS Extended Client pointer): `body` is then the object's content.
        self.s3_payload: S3Payload | None = None
        # Set by `open_envelope` when the body came wrapped by SNS, EventBridge or S3 (see service/sqs/envelopes.py).
        self.envelope: Envelope | None = None
        self.envelope_error: EnvelopeError | None = None
        self._raw_body: str | None = None

    def __repr__(self) -> str:
        return f"Message(message_id={self.message_id!r}, receive_count={self.receive_count})"

    @property
    def message_id(self) -> str:
        """The SQS MessageId."""
        return str(self.raw["MessageId"])

    @property
    def receipt_handle(self) -> str:
        """The handle of this receipt, needed to delete the message or change its visibility."""
        return str(self.raw["ReceiptHandle"])

    @property
    def body(self) -> str:
        """The message body."""
        return str(self.raw.get("Body", ""))

    @property
    def raw_body(self) -> str:
        """The body as SQS delivered it: the envelope's JSON, or the S3 pointer, before either was opened."""
        return self.body if self._raw_body is None else self._raw_body

    @property
    def attributes(self) -> Mapping[str, str]:
        """System attributes (SentTimestamp, ApproximateReceiveCount, MessageGroupId, AWSTraceHeader...)."""
        attributes: Mapping[str, str] = self.raw.get("Attributes", {})
        return attributes

    @property
    def message_attributes(self) -> Mapping[str, Mapping[str, Any]]:
        """Message attributes as SQS returns them: name -> {DataType, StringValue | BinaryValue}."""
        attributes: Mapping[str, Mapping[str, Any]] = self.raw.get("MessageAttributes", {})
        return attributes

    @property
    def receive_count(self) -> int:
        """How many times SQS has delivered this message, this receipt included."""
        return int(self.attributes.get("ApproximateReceiveCount", 1))

    @property
    def route(self) -> str | None:
        """The `route` message attribute, which the Router dispatches on."""
        return self.string_attribute(MESSAGE_ATTRIBUTE_NAME_ROUTE)

    @property
    def partition_key(self) -> str | None:
        """The `partition_key` message attribute, which the partitioned processor groups by."""
        return self.string_attribute(MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY)

    @property
    def group_id(self) -> str | None:
        """The MessageGroupId of a FIFO queue's message."""
        return self.attributes.get("MessageGroupId")

    def json(self) -> Any:
        """The body decoded as JSON (once, then cached); raises InvalidBody, a Reject, when it is not JSON."""
        if self._json is _UNDECODED:
            self._json = decode_json(self.body)
        return self._json

    def model(self, type_: type[T]) -> T:
        """The body validated into `type_` (a Pydantic model, a dataclass, a TypedDict...) by Pydantic.

        Raises InvalidBody, a Reject, when the body is not JSON or does not validate; needs the `pydantic` extra.
        """
        return validate_body(self.body, type_)

    def string_attribute(self, name: str) -> str | None:
        """The string value of message attribute `name`, or None when absent."""
        value = self.message_attributes.get(name)
        if value is None:
            return None
        string = value.get("StringValue")
        return None if string is None else str(string)

    def open_envelope(self, kinds: tuple[str, ...]) -> None:
        """Open the SNS, EventBridge or S3 envelope among `kinds` the body comes in, if any (once, when received).

        A malformed envelope is kept in `envelope_error`: the Server fails the message with it, unhandled.
        """
        try:
            opened = open_envelope(self.raw, kinds)
        except EnvelopeError as error:
            self.envelope_error = error
            return
        if opened is not None:
            self.envelope = opened.envelope
            self.rewrite(opened.body, opened.message_attributes)

    def rewrite(self, body: str, message_attributes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Give the handler `body` (and `message_attributes`) instead; `raw_body` keeps what SQS delivered."""
        if self._raw_body is None:
            self._raw_body = self.body
        raw = {**self.raw, "Body": body}
        if message_attributes is not None:
            raw["MessageAttributes"] = message_attributes
        self.raw = raw

    def max_visibility_s(self) -> int:
        """The longest visibility timeout SQS still accepts: 12 hours from the first receipt, less time spent."""
        first_ms = self.attributes.get("ApproximateFirstReceiveTimestamp")
        if first_ms is None:
            return MAX_VISIBILITY_TIMEOUT - _VISIBILITY_LIMIT_MARGIN_S
        elapsed_s = max(0.0, time.time() - int(first_ms) / 1000)
        return max(0, int(MAX_VISIBILITY_TIMEOUT - elapsed_s) - _VISIBILITY_LIMIT_MARGIN_S)

    @property
    def lease_lost(self) -> bool:
        """True once the pipeline can no longer hold the message: another consumer may be handling it."""
        return self._lease_lost

    async def wait_lease_lost(self) -> None:
        """Return once the lease is lost (at once if it already is): race it against the handler's work."""
        if self._lease_lost:
            return
        if self._lease_lost_event is None:
            self._lease_lost_event = asyncio.Event()
        await self._lease_lost_event.wait()

    def _lose_lease(self) -> bool:
        """Mark the lease lost (the visibility stage alone calls this); False when it already was."""
        if self._lease_lost:
            return False
        self._lease_lost = True
        if self._lease_lost_event is not None:
            self._lease_lost_event.set()
        return True

    async def change_visibility(self, seconds: int) -> None:
        """Make the message visible again in `seconds` (capped to SQS's 12-hour limit), right now."""
        if self._change_visibility is None:
            raise RuntimeError("this message is not attached to a Server")
        await self._change_visibility(self, seconds)
