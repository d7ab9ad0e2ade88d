"""Spans for the S3 calls that carry large payloads, and the payload metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from service.consumer.message import S3Payload
from service.payloads.observer import PayloadObserver
from service.payloads.pointer import PayloadError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_SPAN_KEY = "mq.s3.span"


def instrument_s3_client(client: S3Client, tracer: Tracer) -> None:
    """Make `client` start a CLIENT span (`S3.GetObject`, ...) under the current span for each call."""
    events = client.meta.events
    events.register("before-parameter-build.s3", _starter(tracer))
    events.register("after-call.s3", _end_call)
    events.register("after-call-error.s3", _end_failed_call)


def _starter(tracer: Tracer) -> Any:
    def start(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        attributes = {
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": model.name,
            "aws.s3.bucket": str(params.get("Bucket", "")),
            "aws.s3.key": str(params.get("Key", "")),
        }
        context[_SPAN_KEY] = tracer.start_span(f"S3.{model.name}", kind=SpanKind.CLIENT, attributes=attributes)

    return start


def _end_call(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN_KEY, None)
    if span is None:
        return
    status = getattr(http_response, "status_code", 200)
    span.set_attribute("http.response.status_code", status)
    if status >= 300:
        code = str(parsed.get("Error", {}).get("Code", status))
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()


def _end_failed_call(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN_KEY, None)
    if span is not None:
        span.record_exception(exception)
        span.set_attribute("error.type", type(exception).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(exception)))
        span.end()


# name -> (unit, description); observable counters, read from plain integers when the metrics are collected.
_COUNTERS = {
    "mq.payloads.offloaded": ("{message}", "Message bodies stored in S3 by the Publisher"),
    "mq.payloads.offloaded.size": ("By", "Bytes of the bodies stored in S3"),
    "mq.payloads.fetched": ("{message}", "Message bodies read from S3"),
    "mq.payloads.fetch_errors": ("{message}", "Messages failed for a malformed pointer or an unreadable payload"),
    "mq.payloads.deleted": ("{object}", "Payload objects deleted after their message"),
    "mq.payloads.orphaned": ("{object}", "Payload objects left in S3 after their message was deleted"),
}


class PayloadMetrics(PayloadObserver):
    """Counts offloaded messages and bytes, reads, deletions and orphaned objects."""

    def __init__(self, meter: Meter) -> None:
        self.counts: Counter[str] = Counter()
        for name, (unit, description) in _COUNTERS.items():
            meter.create_observable_counter(name, callbacks=[self._observe(name)], unit=unit, description=description)

    def offloaded(self, payload: S3Payload) -> None:
        """Count one offloaded body and its bytes."""
        self.counts["mq.payloads.offloaded"] += 1
        self.counts["mq.payloads.offloaded.size"] += payload.size

    def fetched(self, payload: S3Payload) -> None:
        """Count one body read from S3."""
        self.counts["mq.payloads.fetched"] += 1

    def fetch_failed(self, error: PayloadError) -> None:
        """Count one message failed for its payload."""
        self.counts["mq.payloads.fetch_errors"] += 1

    def deleted(self, payload: S3Payload) -> None:
        """Count one payload object deleted."""
        self.counts["mq.payloads.deleted"] += 1

    def orphaned(self, payload: S3Payload, error: PayloadError | None) -> None:
        """Count one orphaned payload object."""
        self.counts["mq.payloads.orphaned"] += 1

    def _observe(self, name: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self.counts[name])]

        return observe
