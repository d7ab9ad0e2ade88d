"""ServerSettings: how a Server consumes its queue, with the seed's defaults and SQS's ranges, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TypedDict

from service.aio.backoff import Backoff
from service.checks import check_range, check_seconds
from service.consumer.processors import PROCESSOR_NAMES, Processor, ProcessorName
from service.errors import MAX_VISIBILITY_TIMEOUT, ConfigError
from service.sqs.client import CLIENT_KINDS, DEFAULT_CLIENT_KIND, ClientKind
from service.sqs.envelopes import DEFAULT_ENVELOPE_MODE, ENVELOPE_MODES, EnvelopeMode

DEFAULT_CONCURRENCY = 1
DEFAULT_MAX_NUMBER_OF_MESSAGES = 10
DEFAULT_WAIT_TIME_SECONDS = 1
DEFAULT_VISIBILITY_TIMEOUT = 30
DEFAULT_DELETION_INTERVAL_S = 10.0
DEFAULT_BATCH_DELETE_MAX_MESSAGES = 10
DEFAULT_ATTRIBUTE_NAMES = ("SentTimestamp",)
DEFAULT_MESSAGE_ATTRIBUTE_NAMES = ("All",)
DEFAULT_RECEIVE_BACKOFF = Backoff(base_s=0.5, max_s=30.0)
# Without an explicit deletion interval, a handled message waits at most this fraction of its visibility
# timeout (and at most DEFAULT_DELETION_INTERVAL_S) for its delete call, so it is gone before it reappears.
DELETION_INTERVAL_FRACTION = 0.5

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "concurrency": (1, 100_000),
    "max_number_of_messages": (1, 10),
    "wait_time_seconds": (0, 20),
    "visibility_timeout": (1, MAX_VISIBILITY_TIMEOUT),
    "batch_delete_max_messages": (1, 10),
    "prefetch": (0, 10_000),
    "max_in_flight_per_group": (1, 100_000),
}
"""The allowed range of each integer setting (SQS's limits, and sane bounds); the service's parsers use it too."""


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Everything that shapes a Server's pipeline; invalid values raise ConfigError naming the setting.

    `deletion_interval_s` None derives it from the visibility timeout (see `effective_deletion_interval_s`);
    `prefetch` None prefetches one receive's worth (`max_number_of_messages`); `max_messages_per_s` None
    receives as fast as the handlers go; `sqs_client` is the kind of client the Server creates when it is
    given none ("lean": the least CPU per message; "botocore": aiobotocore's); `envelope` the SNS, EventBridge
    or S3 envelope a body is opened from ("auto": any of them when unmistakable; "none": bodies are left alone).
    `processor` "auto" is
    partitioned (group order kept) on a FIFO queue and bounded elsewhere; `max_in_flight_per_group` None
    sets no cap per message group (see service/consumer/groups.py); `cancel_on_lease_lost` cancels a
    handler whose message's lease is lost instead of only marking the message.
    """

    concurrency: int = DEFAULT_CONCURRENCY
    processor: ProcessorName | Processor = "auto"
    max_number_of_messages: int = DEFAULT_MAX_NUMBER_OF_MESSAGES
    wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    batch_delete_max_messages: int = DEFAULT_BATCH_DELETE_MAX_MESSAGES
    deletion_interval_s: float | None = None
    attribute_names: Sequence[str] = DEFAULT_ATTRIBUTE_NAMES
    message_attribute_names: Sequence[str] = DEFAULT_MESSAGE_ATTRIBUTE_NAMES
    visibility_heartbeat: bool = True
    prefetch: int | None = None
    max_messages_per_s: float | None = None
    receive_backoff: Backoff = DEFAULT_RECEIVE_BACKOFF
    sqs_client: ClientKind = DEFAULT_CLIENT_KIND
    envelope: EnvelopeMode = DEFAULT_ENVELOPE_MODE
    max_in_flight_per_group: int | None = None
    cancel_on_lease_lost: bool = False

    def __post_init__(self) -> None:
        for name, (low, high) in INTEGER_RANGES.items():
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, low, high)
        self._check_choices()
        self._check_deletion_interval()
        if self.max_messages_per_s is not None:
            check_seconds("max_messages_per_s", self.max_messages_per_s, 0, 1_000_000, low_open=True)
        for name in ("attribute_names", "message_attribute_names"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) and item for item in value):
                raise ConfigError(name, value, "a sequence of attribute names")
            object.__setattr__(self, name, tuple(value))

    def _check_choices(self) -> None:
        if isinstance(self.processor, str) and self.processor not in PROCESSOR_NAMES:
            raise ConfigError("processor", self.processor, f"one of {', '.join(PROCESSOR_NAMES)}")
        if not isinstance(self.processor, str | Processor):
            raise ConfigError("processor", self.processor, "a processor name or an object with capacity and run()")
        if self.sqs_client not in CLIENT_KINDS:
            raise ConfigError("sqs_client", self.sqs_client, f"one of {', '.join(CLIENT_KINDS)}")
        if self.envelope not in ENVELOPE_MODES:
            raise ConfigError("envelope", self.envelope, f"one of {', '.join(ENVELOPE_MODES)}")

    def _check_deletion_interval(self) -> None:
        if self.deletion_interval_s is None:
            return
        check_seconds("deletion_interval_s", self.deletion_interval_s, 0, MAX_VISIBILITY_TIMEOUT, low_open=True)
        if not self.deletion_interval_s < self.visibility_timeout:
            raise ConfigError(
                "deletion_interval_s",
                self.deletion_interval_s,
                f"less than visibility_timeout ({self.visibility_timeout}), "
                "or handled messages reappear before they are deleted",
            )

    @property
    def effective_deletion_interval_s(self) -> float:
        """The deletion interval in force: as set, or the smaller of 10 s and half the visibility timeout."""
        if self.deletion_interval_s is not None:
            return self.deletion_interval_s
        return min(DEFAULT_DELETION_INTERVAL_S, self.visibility_timeout * DELETION_INTERVAL_FRACTION)

    @property
    def effective_prefetch(self) -> int:
        """Messages received ahead of the handlers: as set, or one receive's worth."""
        return self.max_number_of_messages if self.prefetch is None else self.prefetch


class ServerOptions(TypedDict, total=False):
    """`Server(queue_url, handler, **options)`: any ServerSettings field by keyword."""

    concurrency: int
    processor: ProcessorName | Processor
    max_number_of_messages: int
    wait_time_seconds: int
    visibility_timeout: int
    batch_delete_max_messages: int
    deletion_interval_s: float | None
    attribute_names: Sequence[str]
    message_attribute_names: Sequence[str]
    visibility_heartbeat: bool
    prefetch: int | None
    max_messages_per_s: float | None
    receive_backoff: Backoff
    sqs_client: ClientKind
    envelope: EnvelopeMode
    max_in_flight_per_group: int | None
    cancel_on_lease_lost: bool


SETTING_NAMES = tuple(field.name for field in fields(ServerSettings))
