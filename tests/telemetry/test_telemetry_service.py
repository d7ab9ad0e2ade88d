"""Telemetry through the real service: uvicorn on loopback, the local SQS server, real exporters."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

from service.telemetry import Telemetry
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import QueueFactory, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_trace_runs_from_the_http_request_to_the_consumer(
    make_queue: QueueFactory, sqs: SQSClient, export_path: str
) -> None:
    url = await make_queue()
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.from_env({}, span_processor=SimpleSpanProcessor(exporter), export=export_path)
    settings = dataclasses.replace(BASE, queue_url=url)
    async with running(settings, hooks=telemetry.hooks) as service:
        (message_id,) = await publish(service.client, {"route": "hello", "body": "traced"})
        await until(lambda: service.runtime.server.health.deleted == 1)
        metrics = (await service.client.get("/metrics")).text
    spans = exporter.get_finished_spans()
    (http,) = [s for s in spans if s.kind == SpanKind.SERVER and "/publish" in s.name]
    (create,) = by_name(spans, "create ")
    (process,) = by_name(spans, "process ")
    # HTTP request -> create (PRODUCER) -> process (CONSUMER), one trace.
    assert create.parent is not None
    assert create.parent.span_id == http.context.span_id
    assert process.parent is not None
    assert process.parent.span_id == create.context.span_id
    assert process.context.trace_id == http.context.trace_id
    assert (process.attributes or {})["messaging.message.id"] == message_id
    assert (create.attributes or {})["messaging.message.id"] == message_id
    # The SQS calls have spans of their own; the probes and /metrics are not traced.
    assert by_name(spans, "send ")
    assert not [s for s in spans if s.kind == SpanKind.SERVER and "/metrics" in s.name]
    # /metrics shows the counters moving.
    assert _sample(metrics, "mq_messages_handled_total", outcome="success") == 1
    assert _sample(metrics, "mq_messages_received_total") >= 1
    assert _sample(metrics, "mq_publish_messages_total", outcome="success") == 1


async def test_spans_reach_an_otlp_receiver(make_queue: QueueFactory, sqs: SQSClient, export_path: str) -> None:
    url = await make_queue()
    port = _free_port()
    receiver = OtelTapHttpProtobufReceiver(OtelTapHttpProtobufReceiverSettings(http_port=port))
    async with receiver:
        # oteltap hands a span only to the streams open when it arrives: subscribe before anything is sent.
        found: dict[tuple[str, str | None], Any] = {}

        async def collect() -> None:
            async for span in receiver.stream_traces():
                found[span.name.split(" ")[0], _attribute(span, "messaging.message.id")] = span

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0)
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_SERVICE_NAME": "mq-e2e"}
        telemetry = Telemetry.from_env(environ, export=export_path)
        try:
            async with running(dataclasses.replace(BASE, queue_url=url), hooks=telemetry.hooks) as service:
                (message_id,) = await publish(service.client, {"route": "hello", "body": "exported"})
                await until(lambda: service.runtime.server.health.deleted == 1)
        finally:
            await asyncio.to_thread(telemetry.shutdown)  # flushes the exporters
        await until(lambda: {("create", message_id), ("process", message_id)} <= set(found), timeout_s=30)
        collector.cancel()
    process, create = found["process", message_id], found["create", message_id]
    assert process.trace_id == create.trace_id
    assert process.parent_span_id == create.span_id


def _attribute(span: object, key: str) -> str | None:
    for attribute in getattr(span, "attributes", []):
        if attribute.key == key:
            return str(attribute.value.string_value)
    return None


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of a Prometheus sample; fails when the series is missing."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"{name} {labels} not in /metrics:\n{text}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
