"""Queue views for operators: depths of the consumed, dead-letter and publish queues, and a peek at a queue.

SQS has no peek: `peek` receives with a short visibility timeout and hands the messages back at once
(ChangeMessageVisibility 0). Every peek therefore raises the peeked messages' receive count.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from service.errors import SQSError
from service.sqs.batch import call_batch, error_from_exception
from service.sqs.urls import is_fifo, queue_name

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.literals import QueueAttributeFilterType

DEPTH_ATTRIBUTES: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "QueueArn",
    "RedrivePolicy",
)
DEFAULT_CACHE_TTL_S = 3.0
MAX_PEEK = 10
# Long enough to hand the messages back before another consumer sees them; short, so a peek that could not
# hand them back (an SQS error) hides them only briefly.
PEEK_VISIBILITY_TIMEOUT_S = 5
DEFAULT_BODY_LIMIT = 4096

ClientSource = Callable[[], "SQSClient"]


@dataclass(frozen=True)
class QueueView:
    """One queue's approximate depth, and where its dead letters go."""

    url: str
    arn: str
    visible: int
    in_flight: int
    delayed: int
    max_receive_count: int | None
    dead_letter_arn: str | None

    @property
    def name(self) -> str:
        """The queue's name: the last part of its URL."""
        return queue_name(self.url)

    @property
    def fifo(self) -> bool:
        """True for a FIFO queue."""
        return is_fifo(self.url)

    def as_dict(self, *, redrive: bool = False) -> dict[str, Any]:
        """JSON-ready; `redrive` adds `max_receive_count`."""
        data: dict[str, Any] = {
            "url": self.url,
            "name": self.name,
            "visible": self.visible,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
        }
        if redrive:
            data["max_receive_count"] = self.max_receive_count
        return data


async def sqs_call(operation: str, call: Awaitable[Any]) -> Any:
    """Await one SQS call; a failure becomes an SQSError that keeps SQS's code."""
    try:
        return await call
    except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
        raise error_from_exception(exc, operation) from exc


async def describe_queue(client: SQSClient, url: str) -> QueueView:
    """A queue's depth and redrive policy (GetQueueAttributes)."""
    response = await sqs_call(
        "GetQueueAttributes", client.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))
    )
    attributes: dict[str, str] = response.get("Attributes", {})
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    count = policy.get("maxReceiveCount")
    return QueueView(
        url=url,
        arn=attributes.get("QueueArn", ""),
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        max_receive_count=None if count is None else int(count),
        dead_letter_arn=policy.get("deadLetterTargetArn"),
    )


async def queue_url_for_arn(client: SQSClient, arn: str) -> str:
    """The URL of the queue an ARN names (arn:aws:sqs:REGION:ACCOUNT:NAME)."""
    *_, account, name = arn.split(":")
    response = await sqs_call("GetQueueUrl", client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account))
    return str(response["QueueUrl"])


@dataclass(frozen=True)
class QueuesSnapshot:
    """The consumed queue, its dead-letter queue and the publish queue (when different), read at `read_at`."""

    queue: QueueView
    dead_letter_queue: QueueView | None
    publish_queue: QueueView | None
    read_at: float

    def as_dict(self) -> dict[str, Any]:
        """The `GET /queues` answer."""
        return {
            "queue": self.queue.as_dict(redrive=True),
            "dead_letter_queue": None if self.dead_letter_queue is None else self.dead_letter_queue.as_dict(),
            "publish_queue": None if self.publish_queue is None else self.publish_queue.as_dict(),
        }


class QueueViews:
    """Reads the queues' attributes at most once per `ttl_s`; concurrent callers share one read."""

    def __init__(
        self, client: ClientSource, queue_url: str, publish_queue_url: str, *, ttl_s: float = DEFAULT_CACHE_TTL_S
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._publish_queue_url = publish_queue_url
        self._ttl_s = ttl_s
        self._snapshot: QueuesSnapshot | None = None
        self._dlq_urls: dict[str, str] = {}  # dead-letter ARN -> URL: an ARN names one queue for good
        self._lock = asyncio.Lock()

    async def snapshot(self, *, fresh: bool = False) -> QueuesSnapshot:
        """The cached snapshot, read again when older than the TTL (or when `fresh`)."""
        async with self._lock:
            current = self._snapshot
            if fresh or current is None or time.monotonic() - current.read_at > self._ttl_s:
                current = self._snapshot = await self._read()
            return current

    def forget(self) -> None:
        """Drop the cached snapshot (after a change the next read must see)."""
        self._snapshot = None

    async def _read(self) -> QueuesSnapshot:
        client = self._client()
        queue = await describe_queue(client, self._queue_url)
        dead_letter_queue = None
        if queue.dead_letter_arn is not None:
            url = self._dlq_urls.get(queue.dead_letter_arn)
            if url is None:
                url = self._dlq_urls[queue.dead_letter_arn] = await queue_url_for_arn(client, queue.dead_letter_arn)
            dead_letter_queue = await describe_queue(client, url)
        publish_queue = None
        if self._publish_queue_url != self._queue_url:
            publish_queue = await describe_queue(client, self._publish_queue_url)
        return QueuesSnapshot(queue, dead_letter_queue, publish_queue, time.monotonic())


async def peek(
    client: SQSClient, queue_url: str, limit: int, *, body_limit: int = DEFAULT_BODY_LIMIT
) -> list[dict[str, Any]]:
    """Up to `limit` (<= 10) messages of a queue, handed back at once; raises each one's receive count."""
    response = await sqs_call(
        "ReceiveMessage",
        client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(limit, MAX_PEEK),
            VisibilityTimeout=PEEK_VISIBILITY_TIMEOUT_S,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ),
    )
    messages: list[dict[str, Any]] = list(response.get("Messages", []))
    if messages:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ]
        # Not handed back (an SQS error): visible again after PEEK_VISIBILITY_TIMEOUT_S anyway.
        await call_batch(
            lambda batch: client.change_message_visibility_batch(QueueUrl=queue_url, Entries=batch),  # type: ignore[arg-type]
            entries,
            operation="ChangeMessageVisibilityBatch",
        )
    unique = {m["MessageId"]: m for m in messages}  # a receive may repeat a message (at least once)
    return [message_view(m, body_limit) for m in unique.values()]


def message_view(message: dict[str, Any], body_limit: int = DEFAULT_BODY_LIMIT) -> dict[str, Any]:
    """A received message as JSON for operators: body truncated to `body_limit` characters, with a flag."""
    body = str(message.get("Body", ""))
    attributes: dict[str, str] = dict(message.get("Attributes", {}))
    sent = attributes.get("SentTimestamp")
    return {
        "message_id": message["MessageId"],
        "body": body[:body_limit],
        "body_truncated": len(body) > body_limit,
        "body_length": len(body),
        "attributes": attributes,
        "message_attributes": {
            name: {key: value for key, value in attribute.items() if key in ("DataType", "StringValue")}
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "receive_count": int(attributes.get("ApproximateReceiveCount", 0)),
        "sent_at": None if sent is None else datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(),
    }


def is_missing_queue(error: SQSError) -> bool:
    """True when SQS says the queue does not exist."""
    return "NonExistentQueue" in error.code or "QueueDoesNotExist" in error.code
