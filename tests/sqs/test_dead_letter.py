"""The dead-letter copy of a rejected message: the queue's URL from its ARN, and the entry within SQS's limits."""

from __future__ import annotations

import json
from typing import Any

from service.sqs.dead_letter import (
    MAX_REASON_CHARS,
    REASON_ATTRIBUTE,
    dead_letter_arn,
    queue_url_for,
    rejection_entry,
)


def received(body: str = "b", attributes: int = 0, **system: str) -> dict[str, Any]:
    return {
        "MessageId": "id-1",
        "ReceiptHandle": "r",
        "Body": body,
        "MessageAttributes": {
            f"a{i}": {"DataType": "String", "StringValue": str(i), "StringListValues": []} for i in range(attributes)
        },
        "Attributes": {"ApproximateReceiveCount": "1", **system},
    }


def test_the_dead_letter_queue_url_comes_from_the_arn_at_the_source_endpoint() -> None:
    arn = "arn:aws:sqs:eu-west-1:123456789012:orders-dlq"
    assert queue_url_for("https://sqs.eu-west-1.amazonaws.com/123456789012/orders", arn) == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq"
    )
    assert queue_url_for("http://127.0.0.1:5000/123456789012/q.fifo", arn + ".fifo") == (
        "http://127.0.0.1:5000/123456789012/orders-dlq.fifo"
    )


def test_the_redrive_policy_names_the_dead_letter_queue() -> None:
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 3})
    assert dead_letter_arn({"RedrivePolicy": policy}) == "arn:aws:sqs:us-east-1:1:dlq"
    assert dead_letter_arn({"QueueArn": "arn:aws:sqs:us-east-1:1:q"}) is None
    assert dead_letter_arn({"RedrivePolicy": ""}) is None
    assert dead_letter_arn({"RedrivePolicy": "{not json"}) is None


def test_the_reason_rides_in_an_attribute_and_only_sqs_value_keys_are_sent() -> None:
    entry = rejection_entry("0", received(attributes=2), "bad", fifo=False)
    assert entry["MessageAttributes"] == {
        "a0": {"DataType": "String", "StringValue": "0"},
        "a1": {"DataType": "String", "StringValue": "1"},
        REASON_ATTRIBUTE: {"DataType": "String", "StringValue": "bad"},
    }
    assert "MessageGroupId" not in entry


def test_a_message_with_ten_attributes_keeps_them_and_goes_without_the_reason() -> None:
    entry = rejection_entry("0", received(attributes=10), "bad", fifo=False)
    assert sorted(entry["MessageAttributes"]) == sorted(f"a{i}" for i in range(10))


def test_a_long_reason_is_cut_and_a_copy_at_the_size_limit_goes_without_it() -> None:
    entry = rejection_entry("0", received(), "x" * 5000, fifo=False)
    assert len(entry["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]) == MAX_REASON_CHARS
    full = rejection_entry("0", received(body="y" * 262_140), "bad", fifo=False)
    assert "MessageAttributes" not in full


def test_a_fifo_copy_keeps_the_group_and_deduplicates_by_the_message_id() -> None:
    entry = rejection_entry("0", received(MessageGroupId="g-1", AWSTraceHeader="Root=1-abc"), "bad", fifo=True)
    assert (entry["MessageGroupId"], entry["MessageDeduplicationId"]) == ("g-1", "id-1")
    assert entry["MessageSystemAttributes"] == {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}}
