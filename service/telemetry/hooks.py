"""Hooks: where telemetry plugs into the service; the app takes them in, telemetry fills them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.consumer.handler import Handler
from service.consumer.observer import PipelineObserver
from service.consumer.pipeline import BatchMiddleware
from service.consumer.pipeline import Middleware as ServerMiddleware
from service.idempotency.observer import IdempotencyObserver
from service.payloads.observer import PayloadObserver
from service.publishing.observer import PublishObserver

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient


@dataclass(frozen=True)
class Hooks:
    """Where telemetry plugs in; every hook is optional.

    `observer` and `publish_observer` see what happens to messages; `server_middleware` wraps the Server's
    handling step of a message, `server_batch_middleware` that of a batch, and `wrap_handler` the handler
    itself; `instrument_client` gets each SQS client the runtime creates; `metrics` renders the metrics for
    `GET /metrics` as (body, content type); `wrap_asgi` wraps the admin app (HTTP server spans);
    `payload_observer` and `instrument_s3_client` do the same for the large payloads in S3 and the S3 client
    that carries them; `operator_action` counts each operator action (action, outcome); `idempotency_observer` sees the
    idempotency guard's decisions.
    """

    observer: PipelineObserver | None = None
    publish_observer: PublishObserver | None = None
    server_middleware: ServerMiddleware | None = None
    server_batch_middleware: BatchMiddleware | None = None
    wrap_handler: Callable[[Handler], Handler] | None = None
    instrument_client: Callable[[SQSClient], None] | None = None
    metrics: Callable[[], tuple[bytes, str]] | None = None
    wrap_asgi: Callable[[ASGIApp], ASGIApp] | None = None
    payload_observer: PayloadObserver | None = None
    instrument_s3_client: Callable[[S3Client], None] | None = None
    operator_action: Callable[[str, str], None] | None = None
    idempotency_observer: IdempotencyObserver | None = None


HooksFactory = Callable[[str, str], Hooks]
"""Builds the Hooks once the queue URLs are known (queue_url, publish_queue_url): in embedded mode, only at run."""
