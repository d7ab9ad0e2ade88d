"""Envelopes opened from received messages: SNS, EventBridge, S3; plain bodies and malformed envelopes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from service.errors import EnvelopeError
from service.sqs.envelopes import (
    EventBridgeEnvelope,
    S3Notification,
    S3Record,
    S3TestEvent,
    SnsEnvelope,
    envelope_kinds,
    open_envelope,
)
from tests.support.envelopes import (
    TOPIC_ARN,
    eventbridge_event,
    s3_notification,
    s3_record,
    s3_test_event,
    sns_notification,
)

AUTO = envelope_kinds("auto")


def received(body: str, **attributes: Any) -> dict[str, Any]:
    return {"MessageId": "m1", "ReceiptHandle": "r1", "Body": body, "MessageAttributes": attributes}


def test_an_sns_notification_gives_its_message_and_attributes() -> None:
    attributes = {
        "route": {"Type": "String", "Value": "orders.created"},
        "count": {"Type": "Number", "Value": "3"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()},
    }
    raw = received(sns_notification('{"id": 7}', attributes), other={"DataType": "String", "StringValue": "x"})
    opened = open_envelope(raw, AUTO)
    assert opened is not None
    assert opened.body == '{"id": 7}'
    assert opened.envelope == SnsEnvelope(
        topic_arn=TOPIC_ARN,
        message_id="22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        timestamp="2012-05-02T00:54:06.655Z",
        subject="order",
    )
    assert opened.message_attributes == {
        "other": {"DataType": "String", "StringValue": "x"},
        "route": {"DataType": "String", "StringValue": "orders.created"},
        "count": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }


def test_an_eventbridge_event_gives_its_detail() -> None:
    opened = open_envelope(received(eventbridge_event({"order": 7, "items": ["a"]})), AUTO)
    assert opened is not None
    assert json.loads(opened.body) == {"order": 7, "items": ["a"]}
    assert opened.message_attributes is None
    assert opened.envelope == EventBridgeEnvelope(
        source="com.example.orders",
        detail_type="Order Placed",
        id="6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        time="2017-12-22T18:43:48Z",
        region="us-west-1",
        account="111122223333",
        resources=("arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0",),
    )


def test_an_s3_notification_has_its_records_parsed_and_keys_decoded() -> None:
    body = s3_notification(
        s3_record("photos/my+photo%281%29.jpg"), s3_record("gone", size=None, event="ObjectRemoved:Delete")
    )
    opened = open_envelope(received(body), AUTO)
    assert opened is not None
    assert opened.body == body  # the notification itself: there is no single inner payload
    assert opened.envelope == S3Notification(
        (
            S3Record(
                "ObjectCreated:Put",
                "amzn-s3-demo-bucket",
                "photos/my photo(1).jpg",
                1024,
                "1970-01-01T00:00:00.000Z",
                "us-west-2",
            ),
            S3Record(
                "ObjectRemoved:Delete", "amzn-s3-demo-bucket", "gone", None, "1970-01-01T00:00:00.000Z", "us-west-2"
            ),
        )
    )


def test_the_s3_test_event_is_recognised() -> None:
    opened = open_envelope(received(s3_test_event()), AUTO)
    assert opened is not None
    assert opened.envelope == S3TestEvent("amzn-s3-demo-bucket", "2014-10-13T15:57:02.089Z", "5582815E1AEA5ADF")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "hello",
        "[1, 2]",
        '{"Message": "not SNS", "TopicArn": "x"}',  # no Type: Notification
        '{"Type": "Notification", "Message": "no topic"}',
        '{"detail-type": "x", "source": "y"}',  # no detail
        '{"Records": [{"eventSource": "aws:kinesis", "s3": 1}]}',
        '{"Records": [], "s3": 1}',
        '{"TopicArn": "x", "Type": "Notification", "Message": ',  # not JSON
        " " + sns_notification("leading space: not an envelope SNS sends"),
    ],
)
def test_bodies_that_are_not_unmistakably_an_envelope_are_left_alone(body: str) -> None:
    assert open_envelope(received(body), AUTO) is None


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (sns_notification("x", Signature=None), "sns", "Signature is missing"),
        (sns_notification("x", Message=42), "sns", "Message is not a string"),
        (sns_notification("x", {"route": {"Value": "a"}}), "sns", "message attribute 'route' lacks a Type and a Value"),
        (sns_notification("x", {"b": {"Type": "Binary", "Value": "%%"}}), "sns", "binary message attribute 'b'"),
        (sns_notification("x", ["route"]), "sns", "MessageAttributes is not an object"),
        (eventbridge_event({}, region=None), "eventbridge", "region is missing"),
        (eventbridge_event({}, resources="arn"), "eventbridge", "resources is not an array of strings"),
        (eventbridge_event("text"), "eventbridge", "detail is not an object"),
        (s3_notification(s3_record(), {"eventSource": "aws:sqs"}), "s3", "a record is not an object from aws:s3"),
        (
            s3_notification({**s3_record(), "s3": {"bucket": {"name": "b"}}}),
            "s3",
            "a record lacks s3.bucket and s3.object",
        ),
        (s3_notification({**s3_record(), "eventName": 3}), "s3", "eventName is not a string"),
        (s3_notification(s3_record(size="big")), "s3", "s3.object.size is not an integer"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_envelope_raises_naming_what_is_wrong(body: str, kind: str, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=f"malformed {kind} envelope: {reason}") as caught:
        open_envelope(received(body), AUTO)
    assert caught.value.kind == kind


def test_a_mode_opens_only_its_own_envelope() -> None:
    sns, eventbridge = received(sns_notification("x")), received(eventbridge_event({"a": 1}))
    assert open_envelope(sns, envelope_kinds("eventbridge")) is None
    assert open_envelope(eventbridge, envelope_kinds("sns")) is None
    assert open_envelope(received(s3_test_event()), envelope_kinds("s3")) is not None
    assert envelope_kinds("none") == ()
    assert open_envelope(sns, envelope_kinds("none")) is None
