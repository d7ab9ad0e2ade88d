"""A PRODUCER span per published message, its context injected into the message's attributes."""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from service.errors import PublishError
from service.publishing.observer import PublishObserver

from .metrics import PublishMetrics
from .propagation import inject

_log = logging.getLogger("service.telemetry")


class PublisherTelemetry(PublishObserver):
    """Use as `Publisher(observer=...)`.

    The span `create <queue>` starts when `publish` accepts the message, as a child of the caller's current
    span (e.g. the HTTP request of /publish), and ends with SQS's answer. Its context travels in the
    message attributes `traceparent`/`tracestate`, unless the message already has 10 attributes: then it
    is sent as it is (SQS refuses an 11th), the span says `mq.context_injected=false`, and the consumer
    starts a new trace.
    """

    def __init__(self, tracer: Tracer, metrics: PublishMetrics, queue_name: str) -> None:
        self._tracer = tracer
        self._metrics = metrics
        self._queue_name = queue_name
        self._spans: dict[int, tuple[Span, float]] = {}

    def enqueued(self, entry: dict[str, Any]) -> None:
        span = self._tracer.start_span(
            f"create {self._queue_name}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "aws_sqs",
                "messaging.destination.name": self._queue_name,
                "messaging.operation.type": "create",
                "messaging.operation.name": "create",
            },
        )
        injected = inject(entry, trace.set_span_in_context(span)) if span.is_recording() else False
        span.set_attribute("mq.context_injected", injected)
        self._spans[id(entry)] = (span, time.monotonic())

    def published(self, entry: dict[str, Any], message_id: str) -> None:
        span, started = self._spans.pop(id(entry), (None, time.monotonic()))
        self._metrics.result(time.monotonic() - started, "success")
        if span is not None:
            span.set_attribute("messaging.message.id", message_id)
            span.end()

    def failed(self, entry: dict[str, Any], error: PublishError) -> None:
        span, started = self._spans.pop(id(entry), (None, time.monotonic()))
        self._metrics.result(time.monotonic() - started, "failure")
        if span is not None:
            span.record_exception(error)
            span.set_attribute("error.type", error.code)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()
