"""Spans for the SQS calls a client makes: botocore's event hooks, or the lean client's `on_call`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, Tracer

from service.sqs.lean import CallFinished, LeanSQSClient

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

# SQS operation -> messaging operation type (OpenTelemetry messaging conventions).
_OPERATION_TYPES = {
    "ReceiveMessage": "receive",
    "SendMessage": "send",
    "SendMessageBatch": "send",
    "DeleteMessage": "settle",
    "DeleteMessageBatch": "settle",
    "ChangeMessageVisibility": "settle",
    "ChangeMessageVisibilityBatch": "settle",
}
_SPAN_KEY = "mq.span"
_MAX_LINKS = 10_000
_MAX_CACHED_NAMES = 256


class ReceiveLinks:
    """Which receive call fetched which message, so a message's span can link to it (bounded)."""

    def __init__(self) -> None:
        self._by_message_id: OrderedDict[str, SpanContext] = OrderedDict()

    def add(self, message_ids: list[str], context: SpanContext) -> None:
        """Remember the receive span of these messages."""
        for message_id in message_ids:
            self._by_message_id[message_id] = context
        while len(self._by_message_id) > _MAX_LINKS:
            self._by_message_id.popitem(last=False)

    def pop(self, message_id: str) -> SpanContext | None:
        """The receive span of a message, forgotten once asked for."""
        return self._by_message_id.pop(message_id, None)


def instrument_client(client: SQSClient | LeanSQSClient, tracer: Tracer, links: ReceiveLinks) -> None:
    """Make `client` start a CLIENT span for each SQS call, ended when the call returns or fails."""
    spans = _CallSpans(tracer, links)
    if isinstance(client, LeanSQSClient):
        client.on_call(spans.lean_call)
        return
    events = client.meta.events
    events.register("before-parameter-build.sqs", spans.before_parameter_build)
    events.register("after-call.sqs", spans.after_call)
    events.register("after-call-error.sqs", spans.after_call_error)


class _CallSpans:
    def __init__(self, tracer: Tracer, links: ReceiveLinks) -> None:
        self._tracer = tracer
        self._links = links
        # (operation, queue URL) -> span name and the attributes every such call has: built once.
        self._static: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def start(self, operation: str, params: Mapping[str, Any]) -> Span:
        """A started CLIENT span for a call of `operation` with `params`."""
        name, static = self._static_for(operation, str(params.get("QueueUrl", "")))
        attributes = static
        entries = params.get("Entries")
        if isinstance(entries, list):
            attributes = {**static, "messaging.batch.message_count": len(entries)}
        return self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def end(self, span: Span, operation: str, status: int, parsed: Mapping[str, Any]) -> None:
        """End a call's span with its HTTP status and, for a receive, the messages it brought."""
        span.set_attribute("http.response.status_code", status)
        if status >= 300:
            code = parsed.get("Error", {}).get("Code", "")
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, code))
        elif operation == "ReceiveMessage":
            messages = parsed.get("Messages", [])
            span.set_attribute("messaging.batch.message_count", len(messages))
            if messages and span.is_recording():
                self._links.add([m["MessageId"] for m in messages], span.get_span_context())
        span.end()

    def lean_call(self, operation: str, params: Mapping[str, Any]) -> CallFinished:
        """The lean client's hook: start a span, and return what ends it."""
        span = self.start(operation, params)

        def finished(status: int, parsed: Mapping[str, Any] | None, error: BaseException | None) -> None:
            if error is not None:
                _fail(span, error)
            else:
                self.end(span, operation, status, parsed or {})

        return finished

    def before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_SPAN_KEY] = self.start(model.name, params)

    def after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is not None:
            self.end(span, model.name, getattr(http_response, "status_code", 200), parsed)

    def after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is not None:
            _fail(span, exception)

    def _static_for(self, operation: str, queue_url: str) -> tuple[str, dict[str, Any]]:
        key = (operation, queue_url)
        found = self._static.get(key)
        if found is None:
            found = _static_attributes(operation, queue_url)
            if len(self._static) >= _MAX_CACHED_NAMES:
                self._static.clear()
            self._static[key] = found
        return found


def _static_attributes(operation: str, queue_url: str) -> tuple[str, dict[str, Any]]:
    queue = queue_url.rsplit("/", 1)[-1]
    kind_of = _OPERATION_TYPES.get(operation)
    attributes: dict[str, Any] = {
        "messaging.system": "aws_sqs",
        "messaging.operation.name": operation,
        "rpc.system": "aws-api",
        "rpc.service": "SQS",
        "rpc.method": operation,
    }
    if queue:
        attributes["messaging.destination.name"] = queue
        attributes["aws.sqs.queue_url"] = queue_url
    if kind_of is not None:
        attributes["messaging.operation.type"] = kind_of
    return f"{kind_of or operation} {queue}".strip(), attributes


def _fail(span: Span, exception: BaseException) -> None:
    span.record_exception(exception)
    span.set_attribute("error.type", type(exception).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exception)))
    span.end()
