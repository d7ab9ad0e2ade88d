"""Interoperability with the official Python SQS Extended Client (`amazon-sqs-extended-client`), on moto.

Importing `sqs_extended_client` makes `boto3.Session` create extended SQS clients; its calls are synchronous,
so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import sqs_extended_client  # noqa: F401 - patches boto3.Session

from service.consumer.message import Message
from service.consumer.server import Server
from service.payloads.payloads import S3Payloads
from service.payloads.pointer import LEGACY_POINTER_CLASS, LEGACY_SIZE_ATTRIBUTE, POINTER_CLASS, SIZE_ATTRIBUTE
from service.publishing.publisher import Publisher
from tests.support.s3 import object_keys
from tests.support.sqs import QueueFactory, until

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

LARGE = "payload from far away " * 20_000  # 440,000 bytes


def extended_client(bucket: str, *, legacy: bool = False, always: bool = False) -> Any:
    """An SQS client of the official library, with large-payload support in `bucket`."""
    session = boto3.Session(region_name="us-east-1")
    client: Any = session.client("sqs")  # an extended client: boto3's types do not know its attributes
    client.large_payload_support = bucket
    client.use_legacy_attribute = legacy
    client.always_through_s3 = always
    client.s3_client = session.client("s3")
    return client


@pytest.mark.parametrize(
    "case", [(False, LARGE), (True, "small, sent through S3 all the same")], ids=["new-large", "legacy-always"]
)
async def test_a_message_the_library_sends_is_handled_with_its_full_body(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory, case: tuple[bool, str]
) -> None:
    legacy, body = case
    url = await make_queue()
    client = extended_client(bucket, legacy=legacy, always=body != LARGE)
    attributes = {"color": {"DataType": "String", "StringValue": "red"}}
    # The library adds its size attribute to the mapping it is given: give it a copy.
    await asyncio.to_thread(client.send_message, QueueUrl=url, MessageBody=body, MessageAttributes=dict(attributes))
    (key,) = await object_keys(s3, bucket)  # the library did offload it, in the format asked for
    peek = await sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)
    (raw,) = peek["Messages"]
    assert json.loads(raw["Body"])[0] == (LEGACY_POINTER_CLASS if legacy else POINTER_CLASS)
    assert (LEGACY_SIZE_ATTRIBUTE if legacy else SIZE_ATTRIBUTE) in raw["MessageAttributes"]
    seen: list[tuple[str, dict[str, Any], str | None]] = []

    async def handler(message: Message) -> None:
        payload = message.s3_payload
        seen.append((message.body, dict(message.message_attributes), payload.key if payload else None))

    payloads = S3Payloads(bucket, client=s3)
    async with (
        payloads,
        Server(url, payloads.wrap_handler(handler), observer=payloads.observers, deletion_interval_s=0.2) as server,
    ):
        await until(lambda: server.health.deleted >= 1, what="the message deleted")
    seen_body, seen_attributes, seen_key = seen[0]
    assert seen_body == body
    assert seen_attributes == attributes
    assert seen_key == key
    assert await object_keys(s3, bucket) == []


@pytest.mark.parametrize("legacy", [False, True], ids=["ExtendedPayloadSize", "SQSLargePayloadSize"])
async def test_a_message_the_publisher_sends_is_read_by_the_library(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory, legacy: bool
) -> None:
    url = await make_queue()
    payloads = S3Payloads(bucket, client=s3, legacy_attribute=legacy)
    attributes = {"color": {"DataType": "String", "StringValue": "green"}}
    async with payloads, Publisher(url, client=sqs, publish_interval_s=0.05, offload=payloads.offloader) as publisher:
        await publisher.publish(LARGE, message_attributes=attributes)
    client = extended_client(bucket, legacy=legacy)
    response = await asyncio.to_thread(
        client.receive_message, QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    (message,) = response["Messages"]
    assert message["Body"] == LARGE
    assert message["MessageAttributes"] == attributes  # the library removed the size marker


async def test_the_library_reads_the_pointer_classes_it_does_not_write_itself(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    # Legacy class with the new attribute: what our Publisher never mixes, yet a reader must accept.
    await s3.put_object(Bucket=bucket, Key="k", Body=b"mixed")
    await sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps([LEGACY_POINTER_CLASS, {"s3BucketName": bucket, "s3Key": "k"}]),
        MessageAttributes={SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": "5"}},
    )
    response = await asyncio.to_thread(
        extended_client(bucket).receive_message, QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    assert [m["Body"] for m in response["Messages"]] == ["mixed"]
    assert POINTER_CLASS != LEGACY_POINTER_CLASS
    assert LEGACY_SIZE_ATTRIBUTE != SIZE_ATTRIBUTE
