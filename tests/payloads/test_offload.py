"""The Publisher's offload step against moto (SQS and S3 on one server): threshold, always, attribute limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from service.errors import ConfigError, PublishError
from service.payloads.payloads import S3Payloads
from service.payloads.pointer import LEGACY_POINTER_CLASS, LEGACY_SIZE_ATTRIBUTE, POINTER_CLASS, SIZE_ATTRIBUTE
from service.publishing.entry import MAX_MESSAGE_BYTES
from service.publishing.publisher import Publisher
from tests.support.s3 import object_keys, read_object
from tests.support.sqs import QueueFactory, drain_queue

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

THRESHOLD = 262_144


@asynccontextmanager
async def publisher(sqs: SQSClient, url: str, payloads: S3Payloads) -> AsyncIterator[Publisher]:
    async with payloads, Publisher(url, client=sqs, publish_interval_s=0.05, offload=payloads.offloader) as pub:
        yield pub


def attributes(count: int) -> dict[str, Mapping[str, Any]]:
    return {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(count)}


async def test_a_body_over_the_threshold_goes_to_s3(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    large = "x" * (THRESHOLD - 10)  # with the attribute below, over the threshold
    small = "y" * 1000
    async with publisher(sqs, url, S3Payloads(bucket, client=s3, prefix="orders/")) as pub:
        assert pub.max_message_bytes == 32 * 1_048_576
        await pub.publish(large, message_attributes={"color": {"DataType": "String", "StringValue": "blue"}})
        await pub.publish(small)
    received = {m["MessageId"]: m for m in await drain_queue(sqs, url)}
    by_body = {m["Body"]: m for m in received.values()}
    assert small in by_body
    assert "MessageAttributes" not in by_body[small]
    (pointer_message,) = [m for m in received.values() if m["Body"] != small]
    kind, location = json.loads(pointer_message["Body"])
    assert kind == POINTER_CLASS
    assert location["s3BucketName"] == bucket
    assert location["s3Key"].startswith("orders/")
    assert pointer_message["MessageAttributes"][SIZE_ATTRIBUTE] == {
        "DataType": "Number",
        "StringValue": str(len(large)),
    }
    assert pointer_message["MessageAttributes"]["color"]["StringValue"] == "blue"
    assert await object_keys(s3, bucket) == [location["s3Key"]]
    assert await read_object(s3, bucket, location["s3Key"]) == large


async def test_threshold_zero_sends_every_body_through_s3(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    async with publisher(sqs, url, S3Payloads(bucket, client=s3, threshold_bytes=0)) as pub:
        await pub.publish("tiny")
    (message,) = await drain_queue(sqs, url)
    _, location = json.loads(message["Body"])
    assert await read_object(s3, bucket, location["s3Key"]) == "tiny"


async def test_legacy_attribute_writes_the_legacy_names(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    async with publisher(sqs, url, S3Payloads(bucket, client=s3, threshold_bytes=0, legacy_attribute=True)) as pub:
        await pub.publish("for an old Java receiver")
    (message,) = await drain_queue(sqs, url)
    assert json.loads(message["Body"])[0] == LEGACY_POINTER_CLASS
    assert set(message["MessageAttributes"]) == {LEGACY_SIZE_ATTRIBUTE}


async def test_bodies_up_to_the_maximum_are_accepted_beyond_it_refused(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    two_mib = "z" * (2 * 1_048_576)
    async with publisher(sqs, url, S3Payloads(bucket, client=s3, max_body_bytes=2 * 1_048_576 + 100)) as pub:
        assert pub.max_message_bytes == 2 * 1_048_576 + 100
        await pub.publish(two_mib)
        with pytest.raises(PublishError, match="at most 2097252") as refused:
            await pub.publish(two_mib + "z" * 101)
    assert refused.value.sender_fault
    (message,) = await drain_queue(sqs, url)
    _, location = json.loads(message["Body"])
    assert await read_object(s3, bucket, location["s3Key"]) == two_mib
    assert len(await object_keys(s3, bucket)) == 1  # nothing stored for the refused one


async def test_offloaded_messages_keep_at_most_nine_attributes(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    large = "x" * (THRESHOLD + 1)
    async with publisher(sqs, url, S3Payloads(bucket, client=s3)) as pub:
        with pytest.raises(PublishError, match="at most 9 on a message whose body goes to S3") as refused:
            await pub.publish(large, message_attributes=attributes(10))
        await pub.publish("small with ten", message_attributes=attributes(10))  # not offloaded: 10 is fine
        await pub.publish(large, message_attributes=attributes(9))
        with pytest.raises(PublishError, match="reserved"):
            await pub.publish("x", message_attributes={SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": "1"}})
    assert refused.value.sender_fault
    messages = await drain_queue(sqs, url)
    assert sorted(len(m["MessageAttributes"]) for m in messages) == [10, 10]  # 9 + the size attribute
    assert len(await object_keys(s3, bucket)) == 1


async def test_publish_nowait_refuses_a_body_that_would_go_to_s3(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    async with publisher(sqs, url, S3Payloads(bucket, client=s3)) as pub:
        with pytest.raises(PublishError, match="use publish"):
            pub.publish_nowait("x" * (THRESHOLD + 1))
        assert await pub.publish_nowait("small")
        with pytest.raises(PublishError, match="reserved"):
            pub.publish_nowait(
                "x", message_attributes={"SQSLargePayloadSize": {"DataType": "Number", "StringValue": "1"}}
            )
    assert [m["Body"] for m in await drain_queue(sqs, url)] == ["small"]


async def test_a_failed_upload_fails_that_message_only(sqs: SQSClient, s3: S3Client, make_queue: QueueFactory) -> None:
    url = await make_queue()
    async with publisher(sqs, url, S3Payloads("no-such-bucket-here", client=s3)) as pub:
        with pytest.raises(PublishError, match="NoSuchBucket") as failed:
            await pub.publish("x" * (THRESHOLD + 1))
        await pub.publish("small")
    assert not failed.value.sender_fault
    assert "s3://no-such-bucket-here/" in str(failed.value)
    assert [m["Body"] for m in await drain_queue(sqs, url)] == ["small"]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="threshold_bytes"):
        S3Payloads("b", threshold_bytes=MAX_MESSAGE_BYTES + 1)
    with pytest.raises(ConfigError, match="max_body_bytes"):
        S3Payloads("b", max_body_bytes=1000)
    with pytest.raises(ConfigError, match="bucket"):
        S3Payloads("")
