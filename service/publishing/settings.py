"""PublisherSettings: how a Publisher batches and sends, with SQS's limits, checked once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from service.aio.backoff import Backoff
from service.checks import check_range, check_seconds
from service.errors import ConfigError
from service.publishing.entry import MAX_MESSAGE_BYTES
from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS, DEFAULT_BATCH_BACKOFF
from service.sqs.client import CLIENT_KINDS, DEFAULT_CLIENT_KIND, ClientKind

DEFAULT_PUBLISH_INTERVAL_S = 1.0
DEFAULT_BATCH_MAX_MESSAGES = 10
DEFAULT_MAX_IN_FLIGHT_BATCHES = 4
DEFAULT_MAX_BUFFERED = 1000


@dataclass(frozen=True, kw_only=True)
class PublisherSettings:
    """Everything that shapes a Publisher's batching; invalid values raise ConfigError naming the setting.

    `max_in_flight_batches` None: 4 on a standard queue, 1 on a FIFO queue (order); `max_message_bytes`
    None: SQS's limit, or the offload step's when bodies can go to S3; `fifo` and
    `content_based_deduplication` None: from the queue (its name; its attributes, read at start).
    """

    publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S
    batch_max_messages: int = DEFAULT_BATCH_MAX_MESSAGES
    max_in_flight_batches: int | None = None
    max_buffered: int = DEFAULT_MAX_BUFFERED
    max_message_bytes: int | None = None
    batch_attempts: int = DEFAULT_BATCH_ATTEMPTS
    backoff: Backoff = DEFAULT_BATCH_BACKOFF
    sqs_client: ClientKind = DEFAULT_CLIENT_KIND
    fifo: bool | None = None
    content_based_deduplication: bool | None = None

    def __post_init__(self) -> None:
        check_seconds("publish_interval_s", self.publish_interval_s, 0, 3600, low_open=True)
        check_range("batch_max_messages", self.batch_max_messages, 1, 10)
        check_range("max_buffered", self.max_buffered, 1, 1_000_000)
        check_range("batch_attempts", self.batch_attempts, 1, 100)
        if self.max_in_flight_batches is not None:
            check_range("max_in_flight_batches", self.max_in_flight_batches, 1, 100)
        if self.sqs_client not in CLIENT_KINDS:
            raise ConfigError("sqs_client", self.sqs_client, f"one of {', '.join(CLIENT_KINDS)}")

    def in_flight_batches(self, *, fifo: bool) -> int:
        """Batches sent at once: one at a time on a FIFO queue, so a group's messages keep their order."""
        if self.max_in_flight_batches is None:
            return 1 if fifo else DEFAULT_MAX_IN_FLIGHT_BATCHES
        if fifo and self.max_in_flight_batches != 1:
            raise ConfigError(
                "max_in_flight_batches",
                self.max_in_flight_batches,
                "1 on a FIFO queue (batches go one at a time, in order)",
            )
        return self.max_in_flight_batches

    def message_bytes(self, offload_max_bytes: int | None) -> int:
        """The largest message accepted: as set, within SQS's limit or, with an offload step, within its own."""
        largest = MAX_MESSAGE_BYTES if offload_max_bytes is None else offload_max_bytes
        value = largest if self.max_message_bytes is None else self.max_message_bytes
        check_range("max_message_bytes", value, 1024, largest)
        return value


class PublisherOptions(TypedDict, total=False):
    """`Publisher(queue_url, **options)`: any PublisherSettings field by keyword."""

    publish_interval_s: float
    batch_max_messages: int
    max_in_flight_batches: int | None
    max_buffered: int
    max_message_bytes: int | None
    batch_attempts: int
    backoff: Backoff
    sqs_client: ClientKind
    fifo: bool | None
    content_based_deduplication: bool | None
