"""OTLP/protobuf for the lean spans, written byte by byte (no protobuf objects: building them is the SDK's cost).

Only the few messages a trace export needs: ExportTraceServiceRequest, ResourceSpans, ScopeSpans, Span and
its Event, Link and Status, KeyValue and AnyValue. A span is encoded once, when it ends, into the bytes of a
`Span` message; `encode_request` wraps a batch of them with the resource and scope encoded once. The output
decodes (opentelemetry-proto) equal to what the SDK's OTLP exporter sends for the same spans
(tests/telemetry/test_otlp_encoder.py compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.telemetry.lean_spans import LeanSpan

_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_FIXED32 = struct.Struct("<I").pack
# Span.flags (SpanFlags): the parent's "is remote" bit is known, and set when the parent is remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_LINK_FLAGS_LOCAL = b"\x35" + _FIXED32(_HAS_IS_REMOTE)
_LINK_FLAGS_REMOTE = b"\x35" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_EMPTY_STATUS = b"\x7a\x00"
_MAX_CACHED_KEYS = 1024
_keys: dict[str, bytes] = {}  # attribute key -> KeyValue.key field, encoded


def varint(value: int) -> bytes:
    """A protobuf varint (negative numbers as 64-bit two's complement, as int64 fields are)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the payload."""
    size = len(payload)
    return tag + (bytes((size,)) if size < 0x80 else varint(size)) + payload


def text(tag: bytes, value: str) -> bytes:
    """A string field."""
    return field(tag, value.encode())


def any_value(value: Any) -> bytes:
    """An AnyValue message (the oneof set even when the value is the type's default)."""
    if isinstance(value, str):
        return text(b"\x0a", value)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if isinstance(value, Sequence):
        return field(b"\x2a", b"".join(field(b"\x0a", any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return field(b"\x32", b"".join(field(b"\x0a", key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"cannot encode a {type(value).__name__} attribute value")


def key_value(key: str, value: Any) -> bytes:
    """A KeyValue message."""
    encoded_key = _keys.get(key)
    if encoded_key is None:
        encoded_key = text(b"\x0a", key)
        if len(_keys) < _MAX_CACHED_KEYS:
            _keys[key] = encoded_key
    return encoded_key + field(b"\x12", any_value(value))


def attributes(tag: bytes, values: Mapping[str, Any] | None) -> bytes:
    """Repeated KeyValue fields (attributes the encoder cannot represent are left out, as the SDK's does)."""
    if not values:
        return b""
    out = []
    for key, value in values.items():
        try:
            out.append(field(tag, key_value(key, value)))
        except TypeError:
            continue
    return b"".join(out)


def encode_span(span: LeanSpan) -> bytes:
    """The bytes of one `Span` message (without its field tag in ScopeSpans)."""
    context = span.context
    parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(text(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    parent = span.parent
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    parts += (
        text(b"\x2a", span.name),
        b"\x30",
        bytes((span.kind.value + 1,)),  # the API's INTERNAL=0 is OTLP's SPAN_KIND_INTERNAL=1, and so on
        b"\x39",
        _FIXED64(span.start_time),
        b"\x41",
        _FIXED64(span.end_time or span.start_time),
        attributes(b"\x4a", span.attributes),
    )
    for name, timestamp, event_attributes in span.events:
        event = b"\x09" + _FIXED64(timestamp) + text(b"\x12", name) + attributes(b"\x1a", event_attributes)
        parts.append(field(b"\x5a", event))
    for linked, link_attributes in span.links:
        link = b"".join(
            (
                b"\x0a\x10",
                linked.trace_id.to_bytes(16, "big"),
                b"\x12\x08",
                linked.span_id.to_bytes(8, "big"),
                attributes(b"\x22", link_attributes),
                _LINK_FLAGS_REMOTE if linked.is_remote else _LINK_FLAGS_LOCAL,
            )
        )
        parts.append(field(b"\x6a", link))
    parts.append(_status(span.status_code, span.status_description))
    parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
    return b"".join(parts)


def _status(code: int, description: str | None) -> bytes:
    if not code and not description:
        return _EMPTY_STATUS
    body = (text(b"\x12", description) if description else b"") + (b"\x18" + bytes((code,)) if code else b"")
    return field(b"\x7a", body)


def encode_resource(resource_attributes: Mapping[str, Any], schema_url: str = "") -> tuple[bytes, bytes]:
    """The ResourceSpans fields before and after its scope_spans: the resource, and its schema URL."""
    resource = field(b"\x0a", attributes(b"\x0a", resource_attributes))
    return resource, (text(b"\x1a", schema_url) if schema_url else b"")


def encode_scope(name: str, version: str | None = None) -> bytes:
    """The ScopeSpans.scope field for the instrumentation scope `name`."""
    scope = text(b"\x0a", name) + (text(b"\x12", version) if version else b"")
    return field(b"\x0a", scope)


def encode_request(resource: tuple[bytes, bytes], scope: bytes, spans: Iterable[bytes]) -> bytes:
    """An ExportTraceServiceRequest: one resource, one scope, the spans (each from `encode_span`)."""
    scope_spans = field(b"\x12", scope + b"".join(field(b"\x12", span) for span in spans))
    return field(b"\x0a", resource[0] + scope_spans + resource[1])
