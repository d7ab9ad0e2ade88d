"""OpenTelemetry for mq-service: the only package that imports OpenTelemetry.

The core reports through hooks (`Server(middleware=..., observer=...)`, `Publisher(observer=...)`,
botocore's event hooks on the SQS client); this package turns them into spans and metrics.
Configuration comes from the standard environment variables: OTEL_SDK_DISABLED, OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_(TRACES_|METRICS_)ENDPOINT,
OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (`otlp` or `none`).
"""

from service.telemetry.hooks import Hooks, HooksFactory
from service.telemetry.setup import Telemetry, TraceContextLogFilter

__all__ = ["Hooks", "HooksFactory", "Telemetry", "TraceContextLogFilter"]
