"""The lean encoder against the official one: for the same spans, the bytes decode to equal requests."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from service.telemetry.lean_spans import SCOPE_NAME, LeanSpan, LeanTracer, to_readable
from service.telemetry.otlp_encoder import encode_request, encode_resource, encode_scope, encode_span

RESOURCE = Resource.create({"service.name": "encoder-test", "k8s.pod.name": "pod-1", "replicas": 3})


class Collected:
    """A sink that keeps the ended spans."""

    def __init__(self) -> None:
        self.spans: list[LeanSpan] = []

    def on_end(self, span: LeanSpan) -> None:
        self.spans.append(span)

    def shutdown(self) -> None:
        return None


def tracer(sink: Collected, provider: TracerProvider | None = None) -> LeanTracer:
    provider = provider or TracerProvider(resource=RESOURCE)
    return LeanTracer(provider.sampler, provider.id_generator, sink)


def lean_bytes(spans: list[LeanSpan], resource: Resource = RESOURCE) -> bytes:
    encoded = [encode_span(span) for span in spans]
    return encode_request(encode_resource(resource.attributes, resource.schema_url), encode_scope(SCOPE_NAME), encoded)


def official(spans: list[LeanSpan], resource: Resource = RESOURCE) -> ExportTraceServiceRequest:
    request: ExportTraceServiceRequest = encode_spans([to_readable(span, resource) for span in spans])
    return request


def assert_same(spans: list[LeanSpan], resource: Resource = RESOURCE) -> None:
    ours = ExportTraceServiceRequest.FromString(lean_bytes(spans, resource))
    theirs = official(spans, resource)
    assert ours == theirs, f"ours:\n{ours}\nofficial:\n{theirs}"
    assert len(ours.resource_spans[0].scope_spans[0].spans) == len(spans)


ATTRIBUTE_VALUES: list[Any] = [
    "text",
    "",
    "naïve ☃ " * 40,  # multi-byte UTF-8, longer than 127 bytes: a two-byte length
    True,
    False,
    0,
    7,
    -1,
    2**63 - 1,
    -(2**63),
    0.0,
    -2.5,
    1e300,
    ("a", "b"),
    (1, 2, 3),
    (True, False),
    (0.5, 1.5),
    (),
]


@pytest.mark.parametrize("value", ATTRIBUTE_VALUES, ids=repr)
def test_every_attribute_type_encodes_as_the_official_encoder_does(value: Any) -> None:
    sink = Collected()
    span = tracer(sink).start_span("attribute", attributes={"value": value, "other": "x"})
    span.end()
    assert_same(sink.spans)


def test_a_consumer_span_with_parent_links_events_and_error_status() -> None:
    sink = Collected()
    lean = tracer(sink)
    producer = lean.start_span("create q", kind=SpanKind.PRODUCER, attributes={"messaging.system": "aws_sqs"})
    producer.end()
    remote = SpanContext(
        producer.get_span_context().trace_id,
        producer.get_span_context().span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "1")]),
    )
    receive = lean.start_span("receive q", kind=SpanKind.CLIENT)
    receive.end()
    process = lean.start_span(
        "process q",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.CONSUMER,
        attributes={"messaging.message.id": "m-1", "mq.receive_count": 2},
        links=[Link(receive.get_span_context(), {"link.kind": "receive"}), Link(remote)],
    )
    process.add_event("visibility extended", {"mq.visibility_timeout_s": 30})
    process.add_event("no attributes")
    try:
        raise ValueError("handler failed")
    except ValueError as exc:
        process.record_exception(exc)
    process.set_attribute("mq.outcome", "failed")
    process.set_status(Status(StatusCode.ERROR, "handler failed"))
    process.end()
    assert process.get_span_context().trace_state == remote.trace_state  # the parent's trace state carries over
    assert_same(sink.spans)


def test_statuses_kinds_and_a_root_span() -> None:
    sink = Collected()
    lean = tracer(sink)
    for kind in SpanKind:
        span = lean.start_span(f"kind {kind.name}", kind=kind)
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "ignored: OK is final")
        span.end()
    unset = lean.start_span("unset")
    unset.set_status(Status(StatusCode.ERROR))
    unset.end()
    assert_same(sink.spans)


def test_a_resource_with_a_schema_url_and_many_spans_in_one_request() -> None:
    resource = Resource.create({"service.name": "schema"}, schema_url="https://opentelemetry.io/schemas/1.24.0")
    sink = Collected()
    lean = tracer(sink)
    for index in range(300):  # lengths past one-byte and two-byte varints
        lean.start_span(f"span {index}", attributes={"index": index}).end()
    assert_same(sink.spans, resource)


def test_spans_the_sampler_drops_are_not_recorded_nor_exported() -> None:
    sink = Collected()
    lean = tracer(sink, TracerProvider(sampler=ParentBased(ALWAYS_OFF)))
    span = lean.start_span("dropped")
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert sink.spans == []


def test_a_span_ignores_changes_after_it_ended() -> None:
    sink = Collected()
    span = tracer(sink).start_span("ended")
    span.end()
    span.set_attribute("late", 1)
    span.add_event("late")
    span.end()
    assert len(sink.spans) == 1
    assert "late" not in sink.spans[0].attributes
    assert sink.spans[0].events == []
