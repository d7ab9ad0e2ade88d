"""A span for every message, around the Server's handling step, and the pipeline's metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from service.consumer.batching import BatchHandler, ItemOutcome
from service.consumer.handler import Handler
from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.consumer.pipeline import BatchStep
from service.consumer.retry import Retry
from service.errors import Reject

from .metrics import ConsumerMetrics
from .propagation import extract
from .sqs_calls import ReceiveLinks


class ConsumerTelemetry(PipelineObserver):
    """Use as both `Server(middleware=t.middleware, observer=t)`.

    The span `process <queue>` (kind CONSUMER) covers the handler and the Server's decision after it
    (deletion queued or retry delay). Its parent is the context the message carries (for a message that came
    through SNS, the context in the SNS message attributes); `mq.envelope` names the envelope its body was
    opened from (sns, eventbridge, s3). It links to the span of the receive call that fetched the message.
    Events record retry delays, visibility extensions, hand-backs and a lost lease (with `mq.lease_lost`
    true); the status is ERROR with the exception recorded when the handler raised.
    """

    def __init__(
        self, tracer: Tracer, metrics: ConsumerMetrics, queue_name: str, links: ReceiveLinks, *, tracing: bool
    ) -> None:
        self._tracer = tracer
        self._tracing = tracing
        self._metrics = metrics
        self._queue_name = queue_name
        self._links = links
        self._span_name = f"process {queue_name}"
        # What every message span carries, built once; a span adds its message's own attributes.
        self._static_attributes: dict[str, Any] = {
            "messaging.system": "aws_sqs",
            "messaging.destination.name": queue_name,
            "messaging.operation.type": "process",
        }
        self._spans: dict[Message, Span] = {}
        self._batch_spans: dict[Message, Span] = {}  # a running batch's span, by each of its messages

    def middleware(self, step: Handler) -> Handler:
        """Wrap the Server's handling step in the message's span (no wrapping at all when tracing is off)."""
        if not self._tracing:
            return step

        async def traced(message: Message) -> None:
            span = self._start_span(message)
            token = otel_context.attach(trace.set_span_in_context(span))
            self._spans[message] = span
            try:
                await step(message)
            except asyncio.CancelledError:
                span.add_event("handed back", {"mq.reason": "cancelled at shutdown"})
                span.set_attribute("mq.outcome", "released")
                raise
            except BaseException as exc:
                _failed(span, exc)
                raise
            finally:
                del self._spans[message]
                otel_context.detach(token)
                span.end()

        return traced

    def batch_middleware(self, step: BatchStep) -> BatchStep:
        """Wrap the Server's handling step of a batch in one span linked to each message's context.

        The batch has no single parent (OpenTelemetry's messaging conventions): its span is a root with a
        link to each message's creation context and receive call; it counts the batch's messages and failures.
        """

        async def traced(handler: BatchHandler, batch: list[Message]) -> list[ItemOutcome]:
            self._metrics.batch(len(batch))
            if not self._tracing:
                return await step(handler, batch)
            span = self._start_batch_span(handler, batch)
            token = otel_context.attach(trace.set_span_in_context(span))
            for message in batch:
                self._batch_spans[message] = span
            try:
                outcomes = await step(handler, batch)
            except asyncio.CancelledError:
                span.add_event("handed back", {"mq.reason": "cancelled at shutdown"})
                raise
            except BaseException as exc:
                _failed(span, exc)
                raise
            else:
                failed = sum(outcome is not None for outcome in outcomes)
                span.set_attribute("mq.batch.failed_count", failed)
                if failed:
                    span.set_status(Status(StatusCode.ERROR, f"{failed} of {len(batch)} messages failed"))
                return outcomes
            finally:
                for message in batch:
                    self._batch_spans.pop(message, None)
                otel_context.detach(token)
                span.end()

        return traced

    def _start_batch_span(self, handler: BatchHandler, batch: list[Message]) -> Span:
        links: list[Link] = []
        for message in batch:
            receive = self._links.pop(message.message_id)
            if receive is not None:
                links.append(Link(receive, {"messaging.message.id": message.message_id}))
            created = trace.get_current_span(extract(message)).get_span_context()
            if created.is_valid:
                links.append(Link(created, {"messaging.message.id": message.message_id}))
        return self._tracer.start_span(
            self._span_name,
            context=otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes={
                **self._static_attributes,
                "messaging.batch.message_count": len(batch),
                "mq.batch.handler": handler.__name__,
            },
            links=links,
        )

    def _start_span(self, message: Message) -> Span:
        receive = self._links.pop(message.message_id)
        attributes: dict[str, Any] = {
            **self._static_attributes,
            "messaging.message.id": message.message_id,
            "mq.receive_count": message.receive_count,
        }
        for name, value in (
            ("mq.partition_key", message.partition_key),
            ("mq.route", message.route),
            ("messaging.message.group_id", message.group_id),
        ):
            if value is not None:
                attributes[name] = value
        envelope = message.envelope or message.envelope_error
        if envelope is not None:
            attributes["mq.envelope"] = envelope.kind
        return self._tracer.start_span(
            self._span_name,
            context=extract(message) or otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(receive)] if receive is not None else None,
        )

    # PipelineObserver hooks: metrics, and events on the span of a message being handled.

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        sent = [int(stamp) for m in messages if (stamp := m.attributes.get("SentTimestamp")) is not None]
        self._metrics.receive(duration_s, len(messages), min(sent) if sent else None)

    def receive_failed(self, error: Exception, duration_s: float) -> None:
        self._metrics.add("mq.receive.errors", 1)

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        outcome = "success" if error is None else "failure"
        self._metrics.handled_message(duration_s, outcome)
        span = self._spans.get(message)
        if span is not None:
            span.set_attribute("mq.outcome", "handled" if error is None else "failed")

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self._metrics.add("mq.messages.retried", 1)
        span = self._spans.get(message)
        if span is not None:
            span.set_attribute("mq.retry_delay_s", delay_s)
            span.add_event("retry scheduled", {"mq.retry_delay_s": delay_s})
        elif (batch_span := self._batch_spans.get(message)) is not None:
            batch_span.add_event(
                "retry scheduled", {"mq.retry_delay_s": delay_s, "messaging.message.id": message.message_id}
            )

    def deleted(self, messages: Sequence[Message]) -> None:
        self._metrics.add("mq.messages.deleted", len(messages))

    def rejected(self, messages: Sequence[Message]) -> None:
        self._metrics.add("mq.messages.rejected", len(messages))

    def released(self, messages: Sequence[Message]) -> None:
        self._metrics.add("mq.messages.released", len(messages))
        for message in messages:
            self._links.pop(message.message_id)

    def visibility_extended(self, messages: Sequence[Message], timeout_s: int) -> None:
        self._metrics.add("mq.visibility.extended", len(messages))
        for message in messages:
            span = self._spans.get(message)
            if span is not None:
                span.add_event("visibility extended", {"mq.visibility_timeout_s": timeout_s})

    def lease_lost(self, message: Message, reason: str) -> None:
        self._metrics.add("mq.messages.lease_lost", 1)
        span = self._spans.get(message)
        if span is not None:
            span.set_attribute("mq.lease_lost", True)
            span.add_event("lease lost", {"mq.reason": reason})

    def held_back(self, message: Message) -> None:
        self._metrics.add("mq.messages.held_back", 1)


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    if isinstance(exc, Retry):
        span.set_attribute("mq.retry_requested_s", exc.delay_s)
    elif isinstance(exc, Reject):
        span.set_attribute("mq.reject_reason", exc.reason)
    span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
