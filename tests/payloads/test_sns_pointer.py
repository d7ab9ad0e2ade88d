"""A large payload the SNS Extended Client stored in S3, delivered through a real SNS subscription (moto)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiobotocore.session import get_session

from service.consumer.message import Message
from service.payloads.payloads import S3Payloads
from service.payloads.pointer import SIZE_ATTRIBUTE, pointer_body
from service.sqs.envelopes import SnsEnvelope
from tests.support.s3 import consuming, object_keys
from tests.support.sqs import QueueFactory, until

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

LARGE = "large body " * 30_000


async def test_an_sns_wrapped_pointer_is_resolved_and_its_object_kept(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory, sqs_endpoint: str
) -> None:
    url = await make_queue()
    await s3.put_object(Bucket=bucket, Key="shared-payload", Body=LARGE.encode())
    async with get_session().create_client("sns", region_name="us-east-1", endpoint_url=sqs_endpoint) as sns:
        topic_arn = (await sns.create_topic(Name=url.rsplit("/", 1)[1]))["TopicArn"]
        queue_arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        await sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        await sns.publish(  # as the SNS Extended Client sends it: the pointer and the size attribute
            TopicArn=topic_arn,
            Message=pointer_body(bucket, "shared-payload"),
            MessageAttributes={
                SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(len(LARGE))},
                "route": {"DataType": "String", "StringValue": "big"},
            },
        )
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)

    payloads = S3Payloads(bucket, client=s3, delete_payloads=True)
    async with consuming(url, payloads, handler) as server:
        await until(lambda: server.health.deleted == 1)

    (message,) = seen
    assert message.body == LARGE
    assert isinstance(message.envelope, SnsEnvelope)
    assert set(message.message_attributes) == {"route"}
    assert message.s3_payload is not None
    assert (message.s3_payload.bucket, message.s3_payload.key) == (bucket, "shared-payload")
    # Other subscriptions of the topic read the same object: only its publisher may delete it.
    assert await object_keys(s3, bucket) == ["shared-payload"]
    assert payloads.stats() == {"deleted": 0, "orphaned": 0}
