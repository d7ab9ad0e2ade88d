"""Lean spans: the service's own spans as light records behind OpenTelemetry's Span and Tracer interfaces.

A `LeanTracer` decides like the SDK's tracer (the provider's sampler and id generator, the parent from the
context given or the current one) and starts a `LeanSpan`: an `opentelemetry.trace.Span`, so the code that
records the service's spans, and a handler calling `trace.get_current_span()`, use it as any span; the SDK
parents its own spans on it through the context, as on any span. When it ends, a sampled span is handed to a
sink (`SpanSink`): the OTLP exporter of `otlp_exporter.py`, or `ReadableSpanSink`, which gives the SDK's
exporters the same span as a `ReadableSpan`. What a lean span leaves out, next to the SDK's: span processors
(it goes to its sink only), span limits (no attribute, event or link is counted or dropped), attribute
value checks beyond skipping None, and `update_name` after start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import Attributes

SCOPE_NAME = "mq-service"
# (sampled, random trace id) -> the span's trace flags, as the SDK's tracer sets them.
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT) | (TraceFlags.RANDOM_TRACE_ID if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}

EventRecord = tuple[str, int, Mapping[str, Any] | None]
LinkRecord = tuple[SpanContext, Mapping[str, Any] | None]


class SpanSink(Protocol):
    """Where ended, sampled lean spans go."""

    def on_end(self, span: LeanSpan) -> None:
        """Take one ended span (called on the event loop: must not block)."""

    def shutdown(self) -> None:
        """Send what is left and stop."""


class LeanSpan(trace.Span):
    """A recording span kept as plain fields until its sink encodes it."""

    __slots__ = (
        "_sink",
        "attributes",
        "context",
        "end_time",
        "events",
        "kind",
        "links",
        "name",
        "parent",
        "start_time",
        "status_code",
        "status_description",
    )

    def __init__(  # noqa: PLR0917 - built by LeanTracer only
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        links: list[LinkRecord],
        sink: SpanSink | None,
        start_time: int | None = None,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_time = start_time or time.time_ns()
        self.end_time: int | None = None
        self.attributes = attributes
        self.events: list[EventRecord] = []
        self.links = links
        self.status_code = 0
        self.status_description: str | None = None
        self._sink = sink  # None once ended, or when the span is not sampled

    def end(self, end_time: int | None = None) -> None:
        """End the span (later calls do nothing) and hand it to the sink."""
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.on_end(self)

    def get_span_context(self) -> SpanContext:
        """The span's context."""
        return self.context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (None is ignored, as the SDK does); nothing once ended."""
        if self.end_time is None and value is not None:
            self.attributes[key] = tuple(value) if isinstance(value, list) else value

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        """Add an event, stamped now unless `timestamp` is given."""
        if self.end_time is None:
            self.events.append((name, timestamp or time.time_ns(), dict(attributes) if attributes else None))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Link to another span's context."""
        if self.end_time is None and context.is_valid:
            self.links.append((context, dict(attributes) if attributes else None))

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if self.end_time is None:
            self.name = name

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self.end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status with the SDK's rules: OK is final, UNSET ignored, a description only with ERROR."""
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        else:
            code = status
        if self.end_time is not None or self.status_code == StatusCode.OK.value or code is StatusCode.UNSET:
            return
        self.status_code = code.value
        self.status_description = description if code is StatusCode.ERROR else None

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An `exception` event with the attributes the SDK gives it."""
        record = _exception_attributes(exception, escaped)
        if attributes:
            record.update(attributes)
        self.add_event("exception", record, timestamp)

    def __repr__(self) -> str:
        return f"LeanSpan(name={self.name!r}, context={self.context!r})"


class LeanTracer(trace.Tracer):
    """Starts lean spans with the SDK's sampling decision and ids; spans that are not sampled do not record."""

    def __init__(self, sampler: Sampler, id_generator: IdGenerator, sink: SpanSink) -> None:
        self._sampler = sampler
        self._ids = id_generator
        self._sink = sink

    def start_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        """A started span, as the SDK's tracer would decide it (parent, ids, sampling)."""
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        else:
            parent = None
            trace_id = self._ids.generate_trace_id()
            random_id = self._ids.is_trace_id_random()
        sampled = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
        is_sampled = sampled.decision is Decision.RECORD_AND_SAMPLE
        span_context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[is_sampled, random_id],
            trace_state=sampled.trace_state,
        )
        if sampled.decision is Decision.DROP:
            return NonRecordingSpan(span_context)
        recorded = dict(attributes) if attributes else {}
        if sampled.attributes:
            recorded.update(sampled.attributes)
        records: list[LinkRecord] = [
            (link.context, dict(link.attributes) if link.attributes else None) for link in links or ()
        ]
        sink = self._sink if is_sampled else None
        return LeanSpan(name, span_context, parent, kind, recorded, records, sink, start_time)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """Start a span and make it current for the block."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current


class ReadableSpanSink:
    """Hands each lean span, as the SDK's `ReadableSpan`, to an SDK exporter's `export` (or any such callable)."""

    def __init__(self, export: Callable[[Sequence[ReadableSpan]], object], resource: Resource) -> None:
        self._export = export
        self._resource = resource
        self._scope = InstrumentationScope(SCOPE_NAME)

    def on_end(self, span: LeanSpan) -> None:
        """Export the span now."""
        self._export([to_readable(span, self._resource, self._scope)])

    def shutdown(self) -> None:
        """Nothing is buffered."""


def to_readable(span: LeanSpan, resource: Resource, scope: InstrumentationScope | None = None) -> ReadableSpan:
    """The SDK's view of a lean span (for SDK exporters, and to compare with the SDK's encoding)."""
    status_code = StatusCode(span.status_code)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=resource,
        attributes=dict(span.attributes),
        events=[Event(name, attrs, timestamp) for name, timestamp, attrs in span.events],
        links=[Link(context, attrs) for context, attrs in span.links],
        kind=span.kind,
        status=Status(status_code, span.status_description if status_code is StatusCode.ERROR else None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=scope or InstrumentationScope(SCOPE_NAME),
    )


def _exception_attributes(exception: BaseException, escaped: bool) -> dict[str, Any]:
    import traceback  # noqa: PLC0415 - only failed messages pay for it

    kind = type(exception)
    module = kind.__module__
    return {
        "exception.type": f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__,
        "exception.message": str(exception),
        "exception.stacktrace": "".join(traceback.format_exception(exception)),
        "exception.escaped": str(escaped),
    }
