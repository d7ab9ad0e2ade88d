"""Bodies as SNS (raw message delivery off) and EventBridge deliver them to SQS, for publishing in tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TEST_TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:local-test-topic"
TEST_ACCOUNT = "000000000000"
TEST_REGION = "us-east-1"


def sns_body(
    message: str,
    attributes: Mapping[str, str] | None = None,
    *,
    topic_arn: str = TEST_TOPIC_ARN,
    subject: str | None = None,
) -> str:
    """An SNS notification wrapping `message`, with `attributes` as SNS String message attributes."""
    body: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": _now(),
        "SignatureVersion": "1",
        "Signature": "local-test-signature",
        "SigningCertURL": f"https://sns.{TEST_REGION}.amazonaws.com/local-test.pem",
        "UnsubscribeURL": f"https://sns.{TEST_REGION}.amazonaws.com/?Action=Unsubscribe",
    }
    if subject is not None:
        body["Subject"] = subject
    if attributes:
        body["MessageAttributes"] = {name: {"Type": "String", "Value": value} for name, value in attributes.items()}
    return json.dumps(body)


def eventbridge_body(
    detail: Mapping[str, Any], *, detail_type: str, source: str = "local.test", resources: tuple[str, ...] = ()
) -> str:
    """An EventBridge event carrying `detail`, as a rule's SQS target receives it."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": TEST_ACCOUNT,
            "time": _now(),
            "region": TEST_REGION,
            "resources": list(resources),
            "detail": dict(detail),
        }
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
