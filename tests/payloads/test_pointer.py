"""The pointer format of the SQS Extended Client libraries: what is read, what is refused, what is written."""

from __future__ import annotations

import json

import pytest

from service.payloads.pointer import (
    LEGACY_POINTER_CLASS,
    POINTER_CLASS,
    PayloadError,
    parse_pointer,
    pointer_body,
    size_attribute_of,
    without_size_attribute,
)

SIZE = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "42"}}
LEGACY_SIZE = {"SQSLargePayloadSize": {"DataType": "Number", "StringValue": "42"}}


@pytest.mark.parametrize("kind", [POINTER_CLASS, LEGACY_POINTER_CLASS])
@pytest.mark.parametrize("attributes", [SIZE, LEGACY_SIZE])
def test_either_class_and_either_attribute_is_read(kind: str, attributes: dict[str, dict[str, str]]) -> None:
    payload = parse_pointer(json.dumps([kind, {"s3BucketName": "b", "s3Key": "k"}]), attributes)
    assert (payload.bucket, payload.key, payload.size) == ("b", "k", 42)


def test_the_written_pointer_is_the_reference_format() -> None:
    assert (
        pointer_body("b", "k")
        == '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]'
    )
    assert json.loads(pointer_body("b", "k", legacy=True))[0] == "com.amazon.sqs.javamessaging.MessageS3Pointer"


@pytest.mark.parametrize(
    ("body", "attributes", "expected"),
    [
        ("not json", SIZE, "not a JSON pointer"),
        ('{"s3BucketName": "b"}', SIZE, "not a JSON array"),
        (json.dumps([POINTER_CLASS, {"s3BucketName": "b"}]), SIZE, "lacks a non-empty s3BucketName and s3Key"),
        (json.dumps(["x.Y", {"s3BucketName": "b", "s3Key": "k"}]), SIZE, "unknown S3 pointer class 'x.Y'"),
        (
            json.dumps([POINTER_CLASS, {"s3BucketName": "b", "s3Key": "k"}]),
            {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "lots"}},
            "not a byte count (s3://b/k)",
        ),
    ],
)
def test_a_malformed_pointer_is_refused(body: str, attributes: dict[str, dict[str, str]], expected: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_pointer(body, attributes)
    assert expected in str(refused.value)


def test_the_marker_is_found_and_removed() -> None:
    color = {"color": {"DataType": "String", "StringValue": "red"}}
    assert size_attribute_of({**color, **LEGACY_SIZE}) == "SQSLargePayloadSize"
    assert size_attribute_of(color) is None
    assert without_size_attribute({**color, **SIZE, **LEGACY_SIZE}) == color
