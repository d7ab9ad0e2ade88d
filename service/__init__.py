"""mq-service: consume SQS queues with a bounded asyncio pipeline; publish to them in batches."""

from service.aio.backoff import Backoff
from service.consumer.batching import MAX_BATCH_MESSAGES, MAX_BATCH_WAIT_S, BatchHandler, batch
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
    BatchItemFailed,
    BatchResultError,
    ClosedError,
    ConfigError,
    DeleteError,
    EnvelopeError,
    HandlerError,
    InvalidBody,
    MQError,
    PublishError,
    ReceiveError,
    Reject,
    RejectError,
    RouteError,
    SQSError,
    VisibilityError,
)
from service.publishing.entry import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, PublishOptions
from service.publishing.observer import OutputHandler, PublishObserver
from service.publishing.publisher import Publisher
from service.publishing.settings import DEFAULT_BATCH_MAX_MESSAGES, DEFAULT_PUBLISH_INTERVAL_S, PublisherSettings
from service.sqs.envelopes import EventBridgeEnvelope, S3Notification, S3Record, SnsEnvelope

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
    "MAX_BATCH_MESSAGES",
    "MAX_BATCH_WAIT_S",
    "MAX_MESSAGE_BYTES",
    "MAX_VISIBILITY_TIMEOUT",
    "MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY",
    "MESSAGE_ATTRIBUTE_NAME_ROUTE",
    "Backoff",
    "BatchHandler",
    "BatchItemFailed",
    "BatchResultError",
    "BoundedProcessor",
    "ClosedError",
    "ConfigError",
    "DeleteError",
    "EnvelopeError",
    "EventBridgeEnvelope",
    "ExponentialRetryPolicy",
    "Handler",
    "HandlerError",
    "Health",
    "InvalidBody",
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
    "Reject",
    "RejectError",
    "Retry",
    "RetryPolicy",
    "RouteError",
    "Router",
    "S3Notification",
    "S3Record",
    "SQSError",
    "Server",
    "ServerGroup",
    "ServerSettings",
    "ShutdownSummary",
    "SnsEnvelope",
    "Steps",
    "SyncHandler",
    "UnboundedProcessor",
    "VisibilityError",
    "batch",
]
