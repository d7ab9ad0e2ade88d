"""mq-service: consume SQS queues with a bounded asyncio pipeline; publish to them in batches."""

from service.aio.backoff import Backoff
from service.consumer.group import ServerGroup
from service.consumer.handler import Handler, SyncHandler
from service.consumer.health import Health, ShutdownSummary
from service.consumer.message import MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY, MESSAGE_ATTRIBUTE_NAME_ROUTE, Message
from service.consumer.observer import PipelineObserver
from service.consumer.outcome import Outcome, Steps
from service.consumer.processors import (
    DEFAULT_UNBOUNDED_MAX_IN_FLIGHT,
    BoundedProcessor,
    PartitionedProcessor,
    Processor,
    UnboundedProcessor,
)
from service.consumer.retry import (
    DEFAULT_RETRY_POLICY,
    MAX_VISIBILITY_TIMEOUT,
    ExponentialRetryPolicy,
    Retry,
    RetryPolicy,
)
from service.consumer.router import Router
from service.consumer.server import DEFAULT_SHUTDOWN_TIMEOUT_S, Server
from service.consumer.settings import (
    DEFAULT_BATCH_DELETE_MAX_MESSAGES,
    DEFAULT_CONCURRENCY,
    DEFAULT_DELETION_INTERVAL_S,
    DEFAULT_MAX_NUMBER_OF_MESSAGES,
    DEFAULT_VISIBILITY_TIMEOUT,
    DEFAULT_WAIT_TIME_SECONDS,
    ServerSettings,
)
from service.errors import (
    ClosedError,
    ConfigError,
    DeleteError,
    HandlerError,
    MQError,
    PublishError,
    ReceiveError,
    RouteError,
    SQSError,
    VisibilityError,
)
from service.publishing.entry import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, PublishOptions
from service.publishing.observer import OutputHandler, PublishObserver
from service.publishing.publisher import Publisher
from service.publishing.settings import DEFAULT_BATCH_MAX_MESSAGES, DEFAULT_PUBLISH_INTERVAL_S, PublisherSettings

__all__ = [
    "DEFAULT_BATCH_DELETE_MAX_MESSAGES",
    "DEFAULT_BATCH_MAX_MESSAGES",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DELETION_INTERVAL_S",
    "DEFAULT_MAX_NUMBER_OF_MESSAGES",
    "DEFAULT_PUBLISH_INTERVAL_S",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "DEFAULT_UNBOUNDED_MAX_IN_FLIGHT",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "DEFAULT_WAIT_TIME_SECONDS",
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_VISIBILITY_TIMEOUT",
    "MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY",
    "MESSAGE_ATTRIBUTE_NAME_ROUTE",
    "Backoff",
    "BoundedProcessor",
    "ClosedError",
    "ConfigError",
    "DeleteError",
    "ExponentialRetryPolicy",
    "Handler",
    "HandlerError",
    "Health",
    "MQError",
    "Message",
    "Outcome",
    "OutputHandler",
    "PartitionedProcessor",
    "PipelineObserver",
    "Processor",
    "PublishError",
    "PublishObserver",
    "PublishOptions",
    "Publisher",
    "PublisherSettings",
    "ReceiveError",
    "Retry",
    "RetryPolicy",
    "RouteError",
    "Router",
    "SQSError",
    "Server",
    "ServerGroup",
    "ServerSettings",
    "ShutdownSummary",
    "Steps",
    "SyncHandler",
    "UnboundedProcessor",
    "VisibilityError",
]
