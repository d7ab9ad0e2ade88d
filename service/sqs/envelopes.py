"""The envelopes SNS, EventBridge and S3 wrap a message in: recognised, checked and opened, as pure functions.

A body is opened only when it is unmistakably an envelope: it claims one (the fields that make it that
envelope: SNS's `"Type": "Notification"` with `TopicArn` and `Message`, EventBridge's `detail-type`, `source`
and `detail`, S3's `Records` from `aws:s3` or its `s3:TestEvent`) and every field that producer always sends
is present with the right type. A body that claims an envelope but lacks one of them raises EnvelopeError;
anything else is left alone. A first-character and a substring check come before any JSON parsing, so a
body that is not a JSON object costs almost nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import unquote_plus

import orjson

from service.errors import EnvelopeError

EnvelopeMode = Literal["auto", "sns", "eventbridge", "s3", "none"]
ENVELOPE_MODES: tuple[EnvelopeMode, ...] = ("auto", "sns", "eventbridge", "s3", "none")
DEFAULT_ENVELOPE_MODE: EnvelopeMode = "auto"


@dataclass(frozen=True, slots=True)
class SnsEnvelope:
    """An SNS notification (raw message delivery off): `message.body` is its `Message`, its attributes the message's."""

    kind: ClassVar[str] = "sns"
    topic_arn: str
    message_id: str
    timestamp: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class EventBridgeEnvelope:
    """An EventBridge event: `message.body` is its `detail` as JSON; the Router routes by `detail_type`."""

    kind: ClassVar[str] = "eventbridge"
    source: str
    detail_type: str
    id: str
    time: str
    region: str
    account: str
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class S3Record:
    """One record of an S3 event notification; `key` is decoded (S3 sends it URL-encoded, spaces as '+')."""

    event_name: str
    bucket: str
    key: str
    size: int | None
    event_time: str
    region: str


@dataclass(frozen=True, slots=True)
class S3Notification:
    """An S3 event notification: `message.body` stays the notification's JSON; `records` are parsed."""

    kind: ClassVar[str] = "s3"
    records: tuple[S3Record, ...]


@dataclass(frozen=True, slots=True)
class S3TestEvent:
    """The test message S3 sends when a notification is configured: deleted without calling the handler."""

    kind: ClassVar[str] = "s3"
    bucket: str
    time: str
    request_id: str


Envelope = SnsEnvelope | EventBridgeEnvelope | S3Notification | S3TestEvent


@dataclass(frozen=True, slots=True)
class Opened:
    """An opened envelope: the message as its handler sees it (inner body and attributes) and what wrapped it."""

    body: str
    message_attributes: Mapping[str, Mapping[str, Any]] | None
    envelope: Envelope


Opener = Callable[[dict[str, Any], Mapping[str, Any]], Opened | None]


def envelope_kinds(mode: EnvelopeMode) -> tuple[str, ...]:
    """The envelopes a mode opens, in the order they are tried."""
    return ("sns", "eventbridge", "s3") if mode == "auto" else () if mode == "none" else (mode,)


def open_envelope(raw: Mapping[str, Any], kinds: tuple[str, ...]) -> Opened | None:
    """Open the envelope of a received message (`raw`, as ReceiveMessage returns it), or None when it has none.

    Raises EnvelopeError when the body claims one of `kinds` but is malformed.
    """
    body = raw.get("Body")
    if not body or body[0] != "{":
        return None  # the cheap path: not a JSON object
    for kind in kinds:
        if _MARKERS[kind] in body:
            break
    else:
        return None  # a JSON object without any of the fields that make an envelope: no parsing
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for kind in kinds:
        opened = _OPENERS[kind](data, raw)
        if opened is not None:
            return opened
    return None


def _sns(data: dict[str, Any], raw: Mapping[str, Any]) -> Opened | None:
    if not (data.get("Type") == "Notification" and "TopicArn" in data and "Message" in data):
        return None
    fields = ("MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL")
    _require_strings("sns", data, (*fields, "UnsubscribeURL"))
    subject = data.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise EnvelopeError("sns", "Subject is not a string")
    attributes = dict(raw.get("MessageAttributes") or {})
    attributes.update(_sns_attributes(data.get("MessageAttributes")))
    envelope = SnsEnvelope(data["TopicArn"], data["MessageId"], data["Timestamp"], subject)
    return Opened(data["Message"], attributes, envelope)


def _sns_attributes(attributes: Any) -> dict[str, dict[str, Any]]:
    """SNS's `{"name": {"Type": ..., "Value": ...}}` as SQS message attributes (`DataType`, `StringValue`...)."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise EnvelopeError("sns", "MessageAttributes is not an object")
    converted: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if not (isinstance(value, dict) and isinstance(value.get("Type"), str) and "Value" in value):
            raise EnvelopeError("sns", f"message attribute {name!r} lacks a Type and a Value")
        data_type = value["Type"]
        if data_type.startswith("Binary"):
            try:
                binary = base64.b64decode(str(value["Value"]), validate=True)
            except binascii.Error as exc:
                raise EnvelopeError("sns", f"binary message attribute {name!r} is not base64") from exc
            converted[name] = {"DataType": data_type, "BinaryValue": binary}
        else:
            converted[name] = {"DataType": data_type, "StringValue": str(value["Value"])}
    return converted


def _eventbridge(data: dict[str, Any], raw: Mapping[str, Any]) -> Opened | None:
    if not ("detail-type" in data and "source" in data and "detail" in data):
        return None
    _require_strings("eventbridge", data, ("version", "id", "detail-type", "source", "account", "time", "region"))
    resources = data.get("resources")
    if not (isinstance(resources, list) and all(isinstance(item, str) for item in resources)):
        raise EnvelopeError("eventbridge", "resources is not an array of strings")
    if not isinstance(data["detail"], dict):
        raise EnvelopeError("eventbridge", "detail is not an object")
    envelope = EventBridgeEnvelope(
        data["source"], data["detail-type"], data["id"], data["time"], data["region"], data["account"], tuple(resources)
    )
    return Opened(orjson.dumps(data["detail"]).decode(), None, envelope)


def _s3(data: dict[str, Any], raw: Mapping[str, Any]) -> Opened | None:
    if data.get("Event") == "s3:TestEvent" and data.get("Service") == "Amazon S3":
        _require_strings("s3", data, ("Time", "Bucket", "RequestId", "HostId"))
        return Opened(raw["Body"], None, S3TestEvent(data["Bucket"], data["Time"], data["RequestId"]))
    records = data.get("Records")
    if not (isinstance(records, list) and records and isinstance(records[0], dict)):
        return None
    if records[0].get("eventSource") != "aws:s3":
        return None
    return Opened(raw["Body"], None, S3Notification(tuple(_s3_record(record) for record in records)))


def _s3_record(record: Any) -> S3Record:
    if not (isinstance(record, dict) and record.get("eventSource") == "aws:s3"):
        raise EnvelopeError("s3", "a record is not an object from aws:s3")
    _require_strings("s3", record, ("eventVersion", "awsRegion", "eventTime", "eventName"))
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    item = s3.get("object") if isinstance(s3, dict) else None
    if not (isinstance(bucket, dict) and isinstance(item, dict)):
        raise EnvelopeError("s3", "a record lacks s3.bucket and s3.object")
    _require_strings("s3", bucket, ("name",), where="s3.bucket.")
    _require_strings("s3", item, ("key",), where="s3.object.")
    size = item.get("size")  # ObjectRemoved events carry no size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise EnvelopeError("s3", "s3.object.size is not an integer")
    return S3Record(
        record["eventName"], bucket["name"], unquote_plus(item["key"]), size, record["eventTime"], record["awsRegion"]
    )


def _require_strings(kind: str, data: Mapping[str, Any], names: tuple[str, ...], *, where: str = "") -> None:
    for name in names:
        if not isinstance(data.get(name), str):
            problem = "is missing" if name not in data else "is not a string"
            raise EnvelopeError(kind, f"{where}{name} {problem}")


# A field each envelope's JSON always holds, found by a substring search before any parsing.
_MARKERS = {"sns": '"TopicArn"', "eventbridge": '"detail-type"', "s3": '"s3'}
_OPENERS: dict[str, Opener] = {"sns": _sns, "eventbridge": _eventbridge, "s3": _s3}
