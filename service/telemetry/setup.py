"""Telemetry: the tracer and meter providers of one process, and the hooks built on them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from service.sqs.urls import queue_name
from service.telemetry.consumer import ConsumerTelemetry
from service.telemetry.hooks import Hooks
from service.telemetry.idempotency import IdempotencyTelemetry
from service.telemetry.lean_spans import LeanSpan, LeanTracer, ReadableSpanSink, SpanSink
from service.telemetry.metrics import ConsumerMetrics, OperatorMetrics, PublishMetrics, SpanExportMetrics
from service.telemetry.otlp_exporter import OtlpSettings, OtlpSpanExporter
from service.telemetry.producer import PublisherTelemetry
from service.telemetry.s3_calls import PayloadMetrics, instrument_s3_client
from service.telemetry.sqs_calls import ReceiveLinks, instrument_client

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

__all__ = ["EXPORT_PATHS", "Telemetry", "TraceContextLogFilter"]

DEFAULT_SERVICE_NAME = "mq-service"
# Probes and scrapes are not traced: they would drown the traces that matter.
UNTRACED_PATHS = "healthz,readyz,metrics,openapi.json"
# How the service's own spans (message, publish, SQS calls) are exported: lean records encoded by
# otlp_encoder.py, or the SDK's spans through its span processors.
EXPORT_PATHS = ("lean", "sdk")


class Telemetry:
    """Tracer and meter providers for one process, and factories for the hooks that use them.

    With a `span_sink`, the service's own spans (message, publish, SQS calls) are lean spans
    (`lean_spans.py`) sampled by the tracer provider's sampler and handed to the sink; every other span
    (a handler's, HTTP, S3) is the SDK's, through the provider's processors.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        prometheus_registry: CollectorRegistry | None = None,
        span_sink: SpanSink | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.prometheus_registry = prometheus_registry
        self.span_sink = span_sink if tracer_provider is not None else None
        self._consumer_metrics: ConsumerMetrics | None = None  # the first queue's: later queues share its instruments
        self._sdk_tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer("mq-service")
        self._tracer: trace.Tracer = self._sdk_tracer
        if tracer_provider is not None and span_sink is not None:
            self._tracer = LeanTracer(tracer_provider.sampler, tracer_provider.id_generator, span_sink)
        exporter = _otlp_exporter(self.span_sink)
        if exporter is not None:
            SpanExportMetrics(self._meter(), exporter.stats)
        self._links = ReceiveLinks()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, span_processor: SpanProcessor | None = None, export: str = "lean"
    ) -> Telemetry:
        """Build from the OTEL_* variables: OTLP export where an endpoint is configured, Prometheus always.

        `export` is MQ_TRACING_EXPORT: "lean" sends the service's own spans through the lean exporter
        (`otlp_exporter.py`; to `span_processor` too, when one is given), "sdk" through the SDK's processors.
        With OTEL_SDK_DISABLED=true nothing is traced or measured (/metrics stays empty).
        """
        if export not in EXPORT_PATHS:
            raise ValueError(f"export must be one of {', '.join(EXPORT_PATHS)}, not {export!r}")
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME})
        registry = CollectorRegistry(auto_describe=False)
        readers: list[MetricReader] = [PrometheusMetricReader(disable_target_info=True, registry=registry)]
        metrics_endpoint = _endpoint(environ, "METRICS")
        if metrics_endpoint:
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=metrics_endpoint)))
        processors = [span_processor] if span_processor is not None else []
        traces_endpoint = _endpoint(environ, "TRACES")
        if traces_endpoint:
            processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint)))
        tracer_provider = None
        sinks: list[SpanSink] = []
        if processors:
            tracer_provider = TracerProvider(resource=resource)
            for processor in processors:
                tracer_provider.add_span_processor(processor)
            if export == "lean":
                sinks = _lean_sinks(environ, traces_endpoint, span_processor, resource)
        return cls(
            span_sink=_FanOut(sinks) if len(sinks) > 1 else (sinks[0] if sinks else None),
            tracer_provider=tracer_provider,
            # Exemplars would cost a lookup of the current span on every measurement.
            meter_provider=MeterProvider(
                resource=resource, metric_readers=readers, exemplar_filter=AlwaysOffExemplarFilter()
            ),
            prometheus_registry=registry,
        )

    @property
    def tracing(self) -> bool:
        """True when spans are recorded and exported."""
        return self.tracer_provider is not None

    def consumer(self, queue_url: str) -> ConsumerTelemetry:
        """Hooks for a Server: `Server(middleware=c.middleware, observer=c)`."""
        queue = queue_name(queue_url)
        metrics = ConsumerMetrics(self._meter(), queue, sharing=self._consumer_metrics)
        if self._consumer_metrics is None:
            self._consumer_metrics = metrics
        return ConsumerTelemetry(self._tracer, metrics, queue, self._links, tracing=self.tracing)

    def publisher(self, queue_url: str) -> PublisherTelemetry:
        """The observer for a Publisher."""
        queue = queue_name(queue_url)
        return PublisherTelemetry(self._tracer, PublishMetrics(self._meter(), queue), queue)

    def instrument_client(self, client: SQSClient) -> None:
        """Spans for every SQS call the client makes (none when tracing is off)."""
        if self.tracing:
            instrument_client(client, self._tracer, self._links)

    def payloads(self) -> PayloadMetrics:
        """The observer that counts large payloads in S3 (offloaded messages and bytes, orphaned objects)."""
        return PayloadMetrics(self._meter())

    def instrument_s3_client(self, client: S3Client) -> None:
        """Spans for every S3 call the payload client makes, under the current span (none when tracing is off)."""
        if self.tracing:
            instrument_s3_client(client, self._sdk_tracer)

    def span_export_stats(self) -> dict[str, int] | None:
        """The lean exporter's counts (accepted, exported, dropped, queued), or None on the SDK's path."""
        exporter = _otlp_exporter(self.span_sink)
        return exporter.stats() if exporter is not None else None

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        """The admin app with HTTP server spans (as it is when tracing is off)."""
        if not self.tracing:
            return app
        return OpenTelemetryMiddleware(
            app,
            excluded_urls=UNTRACED_PATHS,
            exclude_spans=["receive", "send"],
            tracer_provider=self.tracer_provider,
        )

    def metrics(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type (for `GET /metrics`)."""
        body = generate_latest(self.prometheus_registry) if self.prometheus_registry is not None else b""
        return body, CONTENT_TYPE_LATEST

    def hooks(self, queue_url: str, publish_queue_url: str) -> Hooks:
        """Everything the service plugs in: message spans and metrics, SQS call spans, HTTP spans, /metrics."""
        consumer = self.consumer(queue_url)
        return Hooks(
            observer=consumer,
            server_middleware=consumer.middleware,
            server_batch_middleware=consumer.batch_middleware,
            publish_observer=self.publisher(publish_queue_url),
            instrument_client=self.instrument_client,
            metrics=self.metrics,
            wrap_asgi=self.wrap_asgi,
            payload_observer=self.payloads(),
            instrument_s3_client=self.instrument_s3_client,
            operator_action=OperatorMetrics(self._meter()).action,
            idempotency_observer=IdempotencyTelemetry(self._meter(), queue_name(queue_url)),
            span_export_stats=self.span_export_stats,
        )

    def install(self) -> None:
        """Make these providers the process's global ones (for libraries that use the globals)."""
        if self.tracer_provider is not None:
            trace.set_tracer_provider(self.tracer_provider)
        if self.meter_provider is not None:
            otel_metrics.set_meter_provider(self.meter_provider)

    def shutdown(self) -> None:
        """Flush and stop the exporters."""
        if self.span_sink is not None:
            self.span_sink.shutdown()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def _meter(self) -> Meter:
        return (self.meter_provider or NoOpMeterProvider()).get_meter("mq-service")


class TraceContextLogFilter(logging.Filter):
    """Adds `trace_id` and `span_id` of the current span to log records (while a message is handled)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class _FanOut:
    """Several sinks as one."""

    def __init__(self, sinks: list[SpanSink]) -> None:
        self.sinks = sinks

    def on_end(self, span: LeanSpan) -> None:
        for sink in self.sinks:
            sink.on_end(span)

    def shutdown(self) -> None:
        for sink in self.sinks:
            sink.shutdown()


def _otlp_exporter(sink: SpanSink | None) -> OtlpSpanExporter | None:
    sinks = sink.sinks if isinstance(sink, _FanOut) else [sink]
    return next((s for s in sinks if isinstance(s, OtlpSpanExporter)), None)


def _lean_sinks(
    environ: Mapping[str, str], endpoint: str | None, processor: SpanProcessor | None, resource: Resource
) -> list[SpanSink]:
    """The OTLP exporter where an endpoint is configured; the given processor's view of the spans too."""
    sinks: list[SpanSink] = []
    if endpoint:
        sinks.append(OtlpSpanExporter(OtlpSettings.from_env(environ, endpoint), resource))
    if processor is not None:

        def to_processor(spans: Sequence[ReadableSpan]) -> None:
            for span in spans:
                processor.on_end(span)

        sinks.append(ReadableSpanSink(to_processor, resource))
    return sinks


def _endpoint(environ: Mapping[str, str], signal: str) -> str | None:
    """Where OTLP/HTTP sends a signal (TRACES or METRICS), or None: not configured, or its exporter is `none`."""
    if environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() == "none":
        return None
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/{signal.lower()}" if base else None
