"""Telemetry for the "tracing on" and "metrics only" scenarios, wired as the service wires it.

`service.telemetry.Telemetry.from_env` builds the providers (Prometheus metrics always; traces when a span
processor is given). The spans go through a BatchSpanProcessor, as in a deployment, to an exporter that counts
and drops them: the cost measured is producing spans, not shipping them over the network. The scenario is
skipped, with the reason, when `service.telemetry` or the entry points it needs are missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any


class TracingUnavailable(Exception):
    """Why the telemetry scenario cannot run."""


class Instrumentation:
    """A Telemetry with a discarding span exporter; `consumer()` gives the Server's hooks."""

    def __init__(self, *, traces: bool) -> None:
        try:
            telemetry = importlib.import_module("service.telemetry")
        except ImportError as exc:
            raise TracingUnavailable(f"service.telemetry is not importable ({exc})") from exc
        factory = getattr(getattr(telemetry, "Telemetry", None), "from_env", None)
        if factory is None:
            raise TracingUnavailable("service.telemetry has no Telemetry.from_env(environ, span_processor=...)")
        self.sink = _discarding_exporter()
        processor = _batch_processor(self.sink) if traces else None
        self.telemetry = factory({"OTEL_SERVICE_NAME": "mq-service-bench"}, span_processor=processor)
        self.entry_point = "service.telemetry.Telemetry.from_env" + (" + span processor" if traces else "")

    def consumer(self, queue_url: str, client: Any) -> Any:
        """The Server's middleware + observer; spans for the client's SQS calls too (when tracing)."""
        self.telemetry.instrument_client(client)
        return self.telemetry.consumer(queue_url)

    def finish(self) -> int:
        """Flush and stop the providers; the number of spans exported."""
        self.telemetry.shutdown()
        return int(self.sink.spans)


def _batch_processor(exporter: Any) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415 - only these scenarios need it

    return BatchSpanProcessor(exporter)


def _discarding_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: PLC0415

    class DiscardingExporter(SpanExporter):
        """Counts spans and drops them."""

        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    return DiscardingExporter()
