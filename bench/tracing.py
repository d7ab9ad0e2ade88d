"""Telemetry for the "metrics" and "traced" scenarios, wired as the service wires it.

`service.telemetry.Telemetry.from_env` builds the providers, as `mq-service run` does: Prometheus metrics
always (so the untraced baseline pays for its metrics too), and, when traced, the service's spans exported
over OTLP/HTTP to the receiver the harness started in another process (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
by the lean exporter or the SDK's (`--export`). The `discard` export is the old breakdown: the SDK's
spans through a BatchSpanProcessor to an exporter that counts and drops them (no encoding, no network).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from service.telemetry import Telemetry

SERVICE_NAME = "mq-service-bench"
EXPORTS = ("lean", "sdk", "discard")


class TracingUnavailable(Exception):
    """Why the telemetry scenario cannot run."""


class Instrumentation:
    """A Telemetry as the service builds it; `consumer()` gives the Server's hooks."""

    def __init__(self, *, traces: bool, export: str = "lean") -> None:
        environ = {"OTEL_SERVICE_NAME": SERVICE_NAME}
        self.sink = None
        processor = None
        if traces and export == "discard":
            self.sink = _discarding_exporter()
            processor = _batch_processor(self.sink)
        elif traces:
            endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            if not endpoint:
                raise TracingUnavailable("no OTLP receiver: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not set")
            environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint
        self.telemetry = Telemetry.from_env(
            environ, span_processor=processor, export="sdk" if export == "discard" else export
        )
        self.entry_point = f"Telemetry.from_env, {'traces: ' + export if traces else 'metrics only'}"

    def consumer(self, queue_url: str, client: Any) -> Any:
        """The Server's middleware + observer; spans for the client's SQS calls too (when tracing)."""
        self.telemetry.instrument_client(client)
        return self.telemetry.consumer(queue_url)

    def finish(self) -> dict[str, Any]:
        """Flush and stop the providers; what the exporters report."""
        stats = self.telemetry.span_export_stats()
        self.telemetry.shutdown()
        result: dict[str, Any] = {}
        if self.sink is not None:
            result["spans"] = int(self.sink.spans)
        if stats is not None:
            result["span_export"] = self.telemetry.span_export_stats()
        return result


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
