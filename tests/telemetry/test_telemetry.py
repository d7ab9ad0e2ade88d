"""Telemetry with the SDK's in-memory exporter: spans and metrics of a publish -> consume round trip."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service import Message, Publisher, Reject, Retry, Server, batch
from service.telemetry import Telemetry, TraceContextLogFilter
from service.telemetry.lean_spans import ReadableSpanSink
from tests.support.sqs import QueueFactory, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def telemetry(spans: InMemorySpanExporter, metric_reader: InMemoryMetricReader, export_path: str) -> Telemetry:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[metric_reader])
    # On the lean path the service's own spans reach the same exporter as ReadableSpans.
    sink = ReadableSpanSink(spans.export, provider.resource) if export_path == "lean" else None
    return Telemetry(tracer_provider=provider, meter_provider=meters, span_sink=sink)


def traced_server(telemetry: Telemetry, url: str, handler: Any, sqs: SQSClient, **options: Any) -> Server:
    consumer = telemetry.consumer(url)
    options = {"deletion_interval_s": 0.2, "wait_time_seconds": 0, **options}
    return Server(url, handler, client=sqs, middleware=consumer.middleware, observer=consumer, **options)


def named(spans: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith(prefix)]


async def test_the_consumer_span_continues_the_publishers_trace(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    url = await make_queue()
    telemetry.instrument_client(pipeline_sqs)
    queue = url.rsplit("/", 1)[1]
    async with Publisher(
        url, client=pipeline_sqs, publish_interval_s=0.05, observer=telemetry.publisher(url)
    ) as publisher:
        message_id = await publisher.publish("hello", route="greet", partition_key="k1")

    async def handler(message: Message) -> None:
        return None

    server = traced_server(telemetry, url, handler, pipeline_sqs)
    async with server:
        await until(lambda: server.health.deleted == 1)

    (producer,) = named(spans, "create ")
    (consumer,) = named(spans, "process ")
    assert producer.kind == SpanKind.PRODUCER
    assert consumer.kind == SpanKind.CONSUMER
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.system"] == "aws_sqs"
    assert attributes["messaging.destination.name"] == queue
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.message.id"] == message_id
    assert attributes["mq.receive_count"] == 1
    assert (attributes["mq.route"], attributes["mq.partition_key"]) == ("greet", "k1")
    assert attributes["mq.outcome"] == "handled"
    assert consumer.status.status_code == StatusCode.UNSET
    assert consumer.events == ()
    # The message span links to the span of the receive call that fetched it.
    receives = [s for s in named(spans, "receive ") if (s.attributes or {}).get("messaging.batch.message_count")]
    assert [link.context.span_id for link in consumer.links] == [receives[0].context.span_id]
    operations = {(s.attributes or {}).get("messaging.operation.name") for s in spans.get_finished_spans()}
    assert {"SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"} <= operations


async def test_failure_and_retry_are_on_the_span(
    sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["boom", "later"])

    async def handler(message: Message) -> None:
        if message.body == "boom":
            raise ValueError("bad payload")
        raise Retry(300)

    server = traced_server(telemetry, url, handler, sqs, error_handler=lambda e: None)
    async with server:
        await until(lambda: server.health.failed == 2)
    by_body = {}
    for span in named(spans, "process "):
        by_body[(span.attributes or {})["mq.outcome"]] = span
        assert span.status.status_code == StatusCode.ERROR
        assert span.parent is None  # no context in the message: a new trace
    boom = next(s for s in named(spans, "process ") if (s.attributes or {}).get("error.type") == "ValueError")
    assert [e.name for e in boom.events] == ["retry scheduled", "exception"]
    assert (boom.attributes or {})["mq.retry_delay_s"] == 2  # the default policy, first receive
    assert dict(boom.events[1].attributes or {})["exception.message"] == "bad payload"
    later = next(s for s in named(spans, "process ") if (s.attributes or {}).get("error.type") == "Retry")
    assert (later.attributes or {})["mq.retry_delay_s"] == 300


async def test_an_aws_trace_header_joins_the_xray_trace(
    sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    url = await make_queue()
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    await sqs.send_message(
        QueueUrl=url,
        MessageBody="from x-ray",
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": header}},
    )

    async def handler(message: Message) -> None:
        return None

    server = traced_server(telemetry, url, handler, sqs)
    async with server:
        await until(lambda: server.health.deleted == 1)
    (consumer,) = named(spans, "process ")
    assert format(consumer.context.trace_id, "032x") == "5759e988bd862e3fe1be46a994272793"
    assert consumer.parent is not None
    assert format(consumer.parent.span_id, "016x") == "53995c3f42cd8ad8"


async def test_a_message_with_ten_attributes_is_sent_without_context(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    url = await make_queue()
    attributes = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    async with Publisher(
        url, client=pipeline_sqs, publish_interval_s=0.05, observer=telemetry.publisher(url)
    ) as publisher:
        await publisher.publish("full", message_attributes=attributes)
    received = (await sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"]))["Messages"][0]
    assert set(received.get("MessageAttributes", {})) == set(attributes)
    (producer,) = named(spans, "create ")
    assert (producer.attributes or {})["mq.context_injected"] is False


async def test_log_lines_while_handling_carry_the_trace(
    sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, spans: InMemorySpanExporter
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["log me"])
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("tests.handler")
    keep = Keep()
    keep.addFilter(TraceContextLogFilter())
    log.addHandler(keep)
    log.setLevel(logging.INFO)

    async def handler(message: Message) -> None:
        log.info("handling %s", message.body)

    server = traced_server(telemetry, url, handler, sqs)
    try:
        async with server:
            await until(lambda: server.health.deleted == 1)
    finally:
        log.removeHandler(keep)
    (consumer,) = named(spans, "process ")
    assert records[0].trace_id == format(consumer.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert records[0].span_id == format(consumer.context.span_id, "016x")  # type: ignore[attr-defined]


async def test_metrics_count_what_happened(
    sqs: SQSClient, make_queue: QueueFactory, telemetry: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["ok1", "ok2", "ok3", "bad"])

    async def handler(message: Message) -> None:
        if message.body == "bad":
            raise RuntimeError("no")

    server = traced_server(telemetry, url, handler, sqs, error_handler=lambda e: None)
    async with server:
        await until(lambda: server.health.deleted == 3 and server.health.failed == 1)
    points = _points(metric_reader)
    assert points[("mq.messages.received", ())] == 4
    assert points[("mq.messages.handled", (("outcome", "success"),))] == 3
    assert points[("mq.messages.handled", (("outcome", "failure"),))] == 1
    assert points[("mq.messages.deleted", ())] == 3
    assert points[("mq.messages.retried", ())] == 1
    assert points[("mq.handler.duration", (("outcome", "success"),))] == 3  # histogram count


async def test_a_batch_runs_in_one_span_linked_to_every_producer(
    pipeline_sqs: SQSClient,
    make_queue: QueueFactory,
    telemetry: Telemetry,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    url = await make_queue()
    async with Publisher(url, client=pipeline_sqs, observer=telemetry.publisher(url)) as publisher:
        for body in ("a", "b", "c", "bad"):
            await publisher.publish(body)

    async def handle(messages: Sequence[Message]) -> dict[Message, Exception]:
        return {m: Retry(600) for m in messages if m.body == "bad"}

    consumer = telemetry.consumer(url)
    server = Server(
        url,
        batch(handle, max_messages=4, max_wait_s=10),
        client=pipeline_sqs,
        wait_time_seconds=0,
        deletion_interval_s=0.2,
        observer=consumer,
        middleware=consumer.middleware,
        batch_middleware=consumer.batch_middleware,
    )
    async with server:
        await until(lambda: server.health.deleted == 3 and server.health.failed == 1)

    producers = {span.context.span_id for span in named(spans, "create ")}
    (span,) = named(spans, "process ")
    assert span.kind == SpanKind.CONSUMER
    assert span.parent is None  # a batch has no single parent: it links to each message's context instead
    assert {link.context.span_id for link in span.links} >= producers
    attributes = dict(span.attributes or {})
    assert attributes["messaging.batch.message_count"] == 4
    assert attributes["mq.batch.failed_count"] == 1
    assert attributes["mq.batch.handler"] == "handle"
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["retry scheduled"]
    assert _points(metric_reader)[("mq.batch.size", ())] == 1  # one batch recorded in the histogram


async def test_a_rejection_is_counted_and_its_reason_is_on_the_span(
    sqs: SQSClient,
    make_queue: QueueFactory,
    telemetry: Telemetry,
    metric_reader: InMemoryMetricReader,
    spans: InMemorySpanExporter,
) -> None:
    url = await make_queue(max_receive_count=5)
    await send_messages(sqs, url, ["poison"])

    async def handler(message: Message) -> None:
        raise Reject("never parseable")

    server = traced_server(telemetry, url, handler, sqs, error_handler=lambda e: None)
    async with server:
        await until(lambda: server.health.deleted == 1)
    points = _points(metric_reader)
    assert points[("mq.messages.rejected", ())] == 1
    assert points[("mq.messages.deleted", ())] == 1
    assert ("mq.messages.retried", ()) not in points
    (consumer,) = named(spans, "process ")
    assert (consumer.attributes or {})["mq.reject_reason"] == "never parseable"
    assert consumer.status.status_code == StatusCode.ERROR


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attrs = tuple(
                        sorted((k, v) for k, v in (point.attributes or {}).items() if k != "messaging.destination.name")
                    )
                    value = getattr(point, "value", None)
                    found[(metric.name, attrs)] = float(point.count if value is None else value)  # type: ignore[union-attr]
    return found
