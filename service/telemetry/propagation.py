"""Trace context in SQS messages: W3C traceparent/tracestate message attributes, X-Ray's AWSTraceHeader."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.consumer.message import Message

MAX_MESSAGE_ATTRIBUTES = 10
_W3C = TraceContextTextMapPropagator()
_XRAY = AwsXRayPropagator()
_XRAY_HEADER = "X-Amzn-Trace-Id"


class _AttributeGetter(Getter[Mapping[str, Mapping[str, Any]]]):
    def get(self, carrier: Mapping[str, Mapping[str, Any]], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None or "StringValue" not in value:
            return None
        return [str(value["StringValue"])]

    def keys(self, carrier: Mapping[str, Mapping[str, Any]]) -> list[str]:
        return list(carrier)


class _AttributeSetter(Setter[MutableMapping[str, Any]]):
    def set(self, carrier: MutableMapping[str, Any], key: str, value: str) -> None:
        carrier[key] = {"DataType": "String", "StringValue": value}


def extract(message: Message) -> otel_context.Context | None:
    """The context a message carries: W3C attributes first, else AWSTraceHeader; None when it carries none."""
    attributes = message.message_attributes
    if "traceparent" in attributes:
        return _W3C.extract(attributes, getter=_AttributeGetter())
    header = message.attributes.get("AWSTraceHeader")
    if header:
        return _XRAY.extract({_XRAY_HEADER: header})
    return None


def inject(entry: MutableMapping[str, Any], context: otel_context.Context) -> bool:
    """Write `context` into a SendMessage entry's attributes; False when that would pass SQS's 10-attribute limit.

    The globally configured propagator decides the fields (W3C traceparent and tracestate by default).
    """
    carrier: dict[str, Any] = {}
    get_global_textmap().inject(carrier, context=context, setter=_AttributeSetter())
    attributes: MutableMapping[str, Any] = entry.setdefault("MessageAttributes", {})
    new = [key for key in carrier if key not in attributes]
    if len(attributes) + len(new) > MAX_MESSAGE_ATTRIBUTES:
        return False
    attributes.update(carrier)
    return True
