"""The Amazon SQS Extended Client's wire format: the S3 pointer a message body becomes, and its size attribute.

An offloaded message's body is the JSON array `[POINTER_CLASS, {"s3BucketName": ..., "s3Key": ...}]` and it
carries the Number attribute `ExtendedPayloadSize` (or the legacy `SQSLargePayloadSize`, the Java library's
default) with the UTF-8 byte length of the original body. Either class name and either attribute name is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from service.consumer.message import S3Payload
from service.errors import MQError

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
SIZE_ATTRIBUTES = (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE)
POINTER_CLASSES = (POINTER_CLASS, LEGACY_POINTER_CLASS)


class PayloadError(MQError):
    """A message's S3 payload could not be read or written; names the bucket and key where known."""

    def __init__(self, message: str, *, bucket: str = "", key: str = "", code: str = "") -> None:
        where = f" (s3://{bucket}/{key})" if bucket or key else ""
        super().__init__(f"{message}{where}")
        self.bucket = bucket
        self.key = key
        self.code = code


def size_attribute_of(attributes: Mapping[str, Any]) -> str | None:
    """The name of the size attribute that marks an offloaded message, or None for an ordinary message."""
    return next((name for name in SIZE_ATTRIBUTES if name in attributes), None)


def parse_pointer(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> S3Payload:
    """The S3 object an offloaded message points to; raises PayloadError for a malformed pointer."""
    try:
        pointer = json.loads(body)
    except ValueError as exc:
        raise PayloadError(f"the body of a message marked as offloaded to S3 is not a JSON pointer: {exc}") from exc
    if not (isinstance(pointer, list) and len(pointer) == 2 and isinstance(pointer[1], dict)):
        raise PayloadError('the S3 pointer is not a JSON array [class, {"s3BucketName": ..., "s3Key": ...}]')
    kind, location = pointer
    bucket, key = location.get("s3BucketName"), location.get("s3Key")
    if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key):
        raise PayloadError("the S3 pointer lacks a non-empty s3BucketName and s3Key")
    if kind not in POINTER_CLASSES:
        raise PayloadError(
            f"unknown S3 pointer class {kind!r}; expected one of {POINTER_CLASSES}", bucket=bucket, key=key
        )
    return S3Payload(bucket, key, _declared_size(attributes, bucket, key))


def pointer_body(bucket: str, key: str, *, legacy: bool = False) -> str:
    """The body that replaces an offloaded message's: the pointer, as the reference libraries write it."""
    kind = LEGACY_POINTER_CLASS if legacy else POINTER_CLASS
    return json.dumps([kind, {"s3BucketName": bucket, "s3Key": key}], separators=(",", ":"))


def without_size_attribute(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The user's attributes: every attribute but the size marker."""
    return {name: value for name, value in attributes.items() if name not in SIZE_ATTRIBUTES}


def _declared_size(attributes: Mapping[str, Mapping[str, Any]], bucket: str, key: str) -> int:
    name = size_attribute_of(attributes)
    raw = attributes[name].get("StringValue") if name is not None else None
    try:
        return int(str(raw))
    except ValueError as exc:
        raise PayloadError(f"the {name} attribute {raw!r} is not a byte count", bucket=bucket, key=key) from exc
