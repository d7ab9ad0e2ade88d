"""Spans for the SQS calls an aiobotocore client makes, through botocore's event hooks."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, Tracer

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


def instrument_client(client: SQSClient, tracer: Tracer, links: ReceiveLinks) -> None:
    """Make `client` start a CLIENT span for each SQS call, ended when the call returns or fails."""
    events = client.meta.events
    events.register("before-parameter-build.sqs", _CallSpans(tracer).start)
    events.register("after-call.sqs", _end_call(links))
    events.register("after-call-error.sqs", _end_failed_call)


class _CallSpans:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        queue_url = str(params.get("QueueUrl", ""))
        queue = queue_url.rsplit("/", 1)[-1]
        kind_of = _OPERATION_TYPES.get(model.name)
        attributes: dict[str, Any] = {
            "messaging.system": "aws_sqs",
            "messaging.operation.name": model.name,
            "rpc.system": "aws-api",
            "rpc.service": "SQS",
            "rpc.method": model.name,
        }
        if queue:
            attributes["messaging.destination.name"] = queue
            attributes["aws.sqs.queue_url"] = queue_url
        if kind_of is not None:
            attributes["messaging.operation.type"] = kind_of
        entries = params.get("Entries")
        if isinstance(entries, list):
            attributes["messaging.batch.message_count"] = len(entries)
        name = f"{kind_of or model.name} {queue}".strip()
        context[_SPAN_KEY] = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _end_call(links: ReceiveLinks) -> Any:
    def end(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is None:
            return
        status = getattr(http_response, "status_code", 200)
        span.set_attribute("http.response.status_code", status)
        if status >= 300:
            code = parsed.get("Error", {}).get("Code", "")
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, code))
        elif model.name == "ReceiveMessage":
            messages = parsed.get("Messages", [])
            span.set_attribute("messaging.batch.message_count", len(messages))
            if messages and span.is_recording():
                links.add([m["MessageId"] for m in messages], span.get_span_context())
        span.end()

    return end


def _end_failed_call(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN_KEY, None)
    if span is not None:
        span.record_exception(exception)
        span.set_attribute("error.type", type(exception).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(exception)))
        span.end()
