"""The lean span path end to end: the service exporting over OTLP/HTTP to an oteltap receiver on loopback.

Also the exporter alone: settings from the OTEL_* variables, and a receiver that is down (drops counted,
logged once, the queue bounded).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

from service import Message
from service.telemetry import Telemetry
from service.telemetry.lean_spans import LeanTracer
from service.telemetry.otlp_exporter import OtlpSettings, OtlpSpanExporter, parse_headers
from tests.support.runtime import BASE, publish, running
from tests.support.sqs import QueueFactory, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

SPAN_KIND_CONSUMER = 5  # OTLP's SpanKind enum
STATUS_ERROR = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def attributes(item: Any) -> dict[str, Any]:
    """KeyValues as a dict of plain values."""
    found = {}
    for pair in item.attributes:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


class Spans:
    """Every span oteltap receives, with its resource; subscribed before anything is sent."""

    def __init__(self, receiver: OtelTapHttpProtobufReceiver) -> None:
        self.spans: list[Any] = []
        self._task = asyncio.create_task(self._collect(receiver))

    async def _collect(self, receiver: OtelTapHttpProtobufReceiver) -> None:
        async for span in receiver.stream_traces():
            self.spans.append(span)

    def named(self, prefix: str) -> list[Any]:
        return [s for s in self.spans if s.name.startswith(prefix)]

    def stop(self) -> None:
        self._task.cancel()


async def test_the_service_exports_message_spans_a_user_span_and_the_resource(  # noqa: PLR0915 - one trace, checked whole
    make_queue: QueueFactory, sqs: SQSClient
) -> None:
    url = await make_queue()
    port = free_port()
    seen: dict[str, Any] = {}

    async def handler(message: Message) -> None:
        current = trace.get_current_span()
        seen[message.body] = current.get_span_context()
        # A span the handler makes with the SDK: the message span's child, exported by the SDK.
        with telemetry.tracer_provider.get_tracer("handler").start_as_current_span("user work") as span:  # type: ignore[union-attr]
            span.set_attribute("user.body", message.body)
        if message.body == "fail" and message.receive_count == 1:
            raise ValueError("first attempt fails")

    async with OtelTapHttpProtobufReceiver(OtelTapHttpProtobufReceiverSettings(http_port=port)) as receiver:
        spans = Spans(receiver)
        await asyncio.sleep(0)
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_SERVICE_NAME": "mq-lean-e2e",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=blue",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        telemetry = Telemetry.from_env(environ, export="lean")
        assert isinstance(telemetry.span_sink, OtlpSpanExporter)
        settings = dataclasses.replace(BASE, queue_url=url, visibility_timeout=2)
        try:
            async with running(settings, handler=handler, hooks=telemetry.hooks) as service:
                ids = await publish(service.client, {"body": "ok"}, {"body": "fail"})
                await until(lambda: service.runtime.server.health.deleted >= 2, timeout_s=30)
                shown = (await service.client.get("/status")).json()["span_export"]
        finally:
            await asyncio.to_thread(telemetry.shutdown)
        by_id = {message_id: body for message_id, body in zip(ids, ("ok", "fail"), strict=True)}
        await until(lambda: len(spans.named("process ")) >= 3 and len(spans.named("user work")) >= 3, timeout_s=30)
        spans.stop()
    stats = telemetry.span_export_stats()
    assert stats is not None
    assert stats["dropped"] == 0
    assert shown["accepted"] > 0  # /status shows the exporter's counts while it runs
    assert shown["dropped"] == 0
    assert stats["exported"] == stats["accepted"]

    creates = {attributes(s)["messaging.message.id"]: s for s in spans.named("create ")}
    receives = {s.span_id: s for s in spans.named("receive ")}
    users = {s.span_id: s for s in spans.named("user work")}
    processes = spans.named("process ")
    for process in processes:
        attrs = attributes(process)
        body = by_id[attrs["messaging.message.id"]]
        assert process.kind == SPAN_KIND_CONSUMER
        assert attrs["messaging.system"] == "aws_sqs"
        assert attrs["messaging.destination.name"] == url.rsplit("/", 1)[1]
        # The parent is the producer's span, carried in the message; the link is the receive call's span.
        create = creates[attrs["messaging.message.id"]]
        assert process.trace_id == create.trace_id
        assert process.parent_span_id == create.span_id
        (link,) = process.links
        assert link.span_id in receives
        # The handler's current span was this span: its SDK span is a child, in the same trace.
        children = [u for u in users.values() if u.parent_span_id == process.span_id]
        assert len(children) == 1
        assert children[0].trace_id == process.trace_id
        assert attributes(children[0])["user.body"] == body
        if body == "fail" and attrs["mq.receive_count"] == 1:
            assert process.status.code == STATUS_ERROR
            assert process.status.message == "first attempt fails"
            assert attrs["mq.outcome"] == "failed"
            exception = next(e for e in process.events if e.name == "exception")
            assert attributes(exception)["exception.type"] == "ValueError"
        else:
            assert process.status.code == 0
            assert attrs["mq.outcome"] == "handled"
    assert {by_id[attributes(p)["messaging.message.id"]] for p in processes} == {"ok", "fail"}
    assert {
        attributes(p)["mq.receive_count"] for p in processes if by_id[attributes(p)["messaging.message.id"]] == "fail"
    } == {1, 2}
    # trace.get_current_span() inside the handler was the message's span.
    assert seen["ok"].span_id.to_bytes(8, "big") in {p.span_id for p in processes}


async def test_the_lean_spans_carry_the_resource_the_sdk_builds(make_queue: QueueFactory) -> None:
    port = free_port()
    async with OtelTapHttpProtobufReceiver(OtelTapHttpProtobufReceiverSettings(http_port=port)) as receiver:
        environ = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces", "OTEL_SERVICE_NAME": "r"}
        telemetry = Telemetry.from_env(environ, export="lean")
        assert telemetry.tracer_provider is not None
        waiting = asyncio.ensure_future(receiver.await_trace(lambda s: s.name == "probe", timeout=30))
        await asyncio.sleep(0)
        consumer = telemetry.consumer("http://localhost/000/q")
        assert consumer is not None
        telemetry._tracer.start_span("probe").end()  # the service's tracer, as its hooks use it
        await asyncio.to_thread(telemetry.shutdown)
        span = await waiting
    assert span.name == "probe"
    # oteltap hands spans without their resource; the resource bytes are compared in test_otlp_encoder.py.
    expected = dict(telemetry.tracer_provider.resource.attributes)
    assert expected["service.name"] == "r"
    assert "telemetry.sdk.language" in expected


def test_settings_follow_the_otlp_variables() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-team = blue",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "250",
    }
    settings = OtlpSettings.from_env(environ, "http://collector:4318/v1/traces")
    assert settings.headers == {"authorization": "Bearer abc", "x-team": "blue"}
    assert settings.timeout_s == 3
    assert settings.compression == "gzip"
    assert settings.max_queue == 100
    assert settings.batch_size == 100  # never more than the queue holds
    assert settings.interval_s == 0.25
    assert parse_headers("") == {}


def test_gzip_and_headers_reach_the_receiver() -> None:
    # oteltap does not take gzip bodies: a stdlib HTTP server on loopback records what arrives instead.
    requests: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        settings = OtlpSettings(endpoint, headers={"x-tenant": "blue"}, compression="gzip", interval_s=0.1)
        exporter = OtlpSpanExporter(settings, Resource.create({"service.name": "gz"}))
        tracer_for(exporter).start_span("zipped").end()
        exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    ((headers, body),) = requests
    assert headers["x-tenant"] == "blue"
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert span.name == "zipped"
    assert attributes(request.resource_spans[0].resource)["service.name"] == "gz"
    assert exporter.stats()["exported"] == 1


def tracer_for(exporter: OtlpSpanExporter) -> LeanTracer:
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    provider = TracerProvider()
    return LeanTracer(provider.sampler, provider.id_generator, exporter)


def test_with_the_receiver_down_spans_are_dropped_counted_logged_once_and_the_queue_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    settings = OtlpSettings(f"http://127.0.0.1:{port}/v1/traces", timeout_s=0.2, max_queue=50, batch_size=10)
    exporter = OtlpSpanExporter(settings, Resource.create({}))
    tracer = tracer_for(exporter)
    caplog.set_level(logging.WARNING, logger="service.telemetry")
    for index in range(1000):
        tracer.start_span(f"span {index}").end()
        assert exporter.stats()["queued"] <= settings.max_queue
    exporter.shutdown()
    stats = exporter.stats()
    assert stats["exported"] == 0
    assert stats["dropped"] == 1000  # the full queue's and the unsent batches'
    assert stats["queued"] == 0
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1  # rate-limited: one line a minute
