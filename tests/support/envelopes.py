"""Bodies in the exact shapes SNS, EventBridge and S3 deliver to SQS (from AWS's documented examples)."""

from __future__ import annotations

import json
from typing import Any

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:orders"


def sns_notification(message: str, attributes: Any = None, **fields: Any) -> str:
    """An SNS notification as SQS receives it with raw message delivery off."""
    body: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Subject": "order",
        "Message": message,
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+1fkIp9F2/"
        "LmNVKb5aFlYq+9rk9ZiPph5YlLmWsDcyC5T+Sy9/umic5S0UQc2PEtgdpVBahwNOdMW4JPwk0kAJJztnc=",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + TOPIC_ARN + ":1",
    }
    if attributes is not None:
        body["MessageAttributes"] = attributes
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}, indent=2)


def eventbridge_event(detail: Any, detail_type: str = "Order Placed", **fields: Any) -> str:
    """An EventBridge event as an SQS rule target receives it."""
    body: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "com.example.orders",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": detail,
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def s3_record(
    key: str = "photos/my+photo.jpg", size: int | None = 1024, event: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """One record of an S3 event notification."""
    item: dict[str, Any] = {"key": key, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
    if size is not None:
        item["size"] = size
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": "amzn-s3-demo-bucket",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::amzn-s3-demo-bucket",
            },
            "object": item,
        },
    }


def s3_notification(*records: dict[str, Any]) -> str:
    """An S3 event notification as SQS receives it."""
    return json.dumps({"Records": list(records or [s3_record()])})


def s3_test_event() -> str:
    """The message S3 sends once when a notification is configured."""
    return json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2014-10-13T15:57:02.089Z",
            "Bucket": "amzn-s3-demo-bucket",
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )
