"""mq-service: consume SQS queues with a bounded asyncio pipeline; publish to them in batches."""

from .backoff import Backoff
from .errors import (
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
from .group import ServerGroup
from .handler import Handler, SyncHandler
from .health import Health, ShutdownSummary
from .message import MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY, MESSAGE_ATTRIBUTE_NAME_ROUTE, Message
from .observer import PipelineObserver
from .processors import (
    DEFAULT_UNBOUNDED_MAX_IN_FLIGHT,
    BoundedProcessor,
    PartitionedProcessor,
    Processor,
    UnboundedProcessor,
)
from .publish_entry import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, PublishOptions
from .publisher import (
    DEFAULT_BATCH_MAX_MESSAGES,
    DEFAULT_PUBLISH_INTERVAL_S,
    OutputHandler,
    Publisher,
    PublishObserver,
)
from .retry import DEFAULT_RETRY_POLICY, MAX_VISIBILITY_TIMEOUT, ExponentialRetryPolicy, Retry, RetryPolicy
from .router import Router
from .server import (
    DEFAULT_BATCH_DELETE_MAX_MESSAGES,
    DEFAULT_CONCURRENCY,
    DEFAULT_DELETION_INTERVAL_S,
    DEFAULT_MAX_NUMBER_OF_MESSAGES,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    DEFAULT_VISIBILITY_TIMEOUT,
    DEFAULT_WAIT_TIME_SECONDS,
    Server,
)

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
    "OutputHandler",
    "PartitionedProcessor",
    "PipelineObserver",
    "Processor",
    "PublishError",
    "PublishObserver",
    "PublishOptions",
    "Publisher",
    "ReceiveError",
    "Retry",
    "RetryPolicy",
    "RouteError",
    "Router",
    "SQSError",
    "Server",
    "ServerGroup",
    "ShutdownSummary",
    "SyncHandler",
    "UnboundedProcessor",
    "VisibilityError",
]
