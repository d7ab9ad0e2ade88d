"""Receiving offloaded messages against moto (SQS and S3 on one server): resolve, delete, fail, orphan."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from service.consumer.message import Message, S3Payload
from service.consumer.retry import ExponentialRetryPolicy
from service.consumer.server import Server
from service.errors import HandlerError, MQError
from service.payloads.payloads import S3Payloads
from service.payloads.pointer import PayloadError
from service.payloads.store import create_s3_client
from tests.support.s3 import consuming, object_keys, send_offloaded
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, eventually, queue_counts, until

if TYPE_CHECKING:
    import pytest
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_sqs import SQSClient

LARGE = "large body " * 30_000  # 330,000 bytes: more than SQS's 256 KiB default
IMMEDIATE_RETRY = ExponentialRetryPolicy(base_s=0, max_delay_s=0)


class Seen:
    """A handler that records what it saw, and optionally fails."""

    def __init__(self, *, fail: bool = False) -> None:
        self.messages: list[tuple[str, dict[str, str | None], S3Payload | None]] = []
        self.fail = fail

    async def __call__(self, message: Message) -> None:
        attributes = {name: value.get("StringValue") for name, value in message.message_attributes.items()}
        self.messages.append((message.body, attributes, message.s3_payload))
        if self.fail:
            raise RuntimeError("handler failed")


async def test_handler_sees_the_body_from_s3_and_both_are_deleted(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    color = {"color": {"DataType": "String", "StringValue": "blue"}}
    key = await send_offloaded(sqs, s3, url, bucket, LARGE, attributes=color)
    handler = Seen()
    payloads = S3Payloads(bucket, client=s3)
    async with consuming(url, payloads, handler) as server:
        await until(lambda: server.health.deleted >= 1, what="the message deleted")
    ((body, attributes, payload),) = set((b, tuple(a.items()), p) for b, a, p in handler.messages)  # at least once
    assert body == LARGE
    assert dict(attributes) == {"color": "blue"}  # the size marker is not shown to the handler
    assert payload is not None
    assert (payload.bucket, payload.key, payload.size) == (bucket, key, len(LARGE))
    assert await queue_counts(sqs, url) == (0, 0)
    assert await object_keys(s3, bucket) == []  # deleted after SQS deleted the message (shutdown flushes)
    stats = payloads.stats()  # at least once: a duplicate delivery may delete the (already deleted) object again
    assert stats["deleted"] >= 1
    assert stats["orphaned"] == 0


async def test_legacy_attribute_and_pointer_class_are_read(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_offloaded(sqs, s3, url, bucket, "from an old Java sender", legacy_attribute=True, legacy_class=True)
    await send_offloaded(sqs, s3, url, bucket, "legacy class only", legacy_class=True)
    await send_offloaded(sqs, s3, url, bucket, "legacy attribute only", legacy_attribute=True)
    handler = Seen()
    async with consuming(url, S3Payloads(bucket, client=s3), handler) as server:
        await until(lambda: server.health.deleted >= 3, what="three messages deleted")
    assert {body for body, _, _ in handler.messages} == {
        "from an old Java sender",
        "legacy class only",
        "legacy attribute only",
    }
    assert all(attributes == {} for _, attributes, _ in handler.messages)


async def test_a_failing_handler_leaves_both_message_and_object(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    key = await send_offloaded(sqs, s3, url, bucket, LARGE)
    handler = Seen(fail=True)
    async with consuming(url, S3Payloads(bucket, client=s3), handler, []) as server:
        await until(lambda: server.health.failed >= 1, what="the handler failed")
    assert handler.messages[0][0] == LARGE
    visible, in_flight = await queue_counts(sqs, url)
    assert visible + in_flight == 1
    assert await object_keys(s3, bucket) == [key]


async def test_missing_object_fails_the_message_without_the_handler(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=2)
    key = await send_offloaded(sqs, s3, url, bucket, LARGE, store=False)
    handler = Seen()
    errors: list[MQError] = []
    payloads = S3Payloads(bucket, client=s3)
    dead_letters = await dead_letter_queue_of(sqs, url)

    async def dead_lettered() -> bool:
        return (await queue_counts(sqs, dead_letters))[0] == 1

    async with consuming(url, payloads, handler, errors, retry_policy=IMMEDIATE_RETRY):
        # Never deleted: after maxReceiveCount receives the redrive policy moves it to the dead-letter queue.
        await eventually(dead_lettered, what="the message in the dead-letter queue")
    assert handler.messages == []
    error = errors[0]
    assert isinstance(error, HandlerError)
    assert isinstance(error.cause, PayloadError)
    assert error.cause.code == "NoSuchKey"
    assert "NoSuchKey" in str(error.cause)
    assert f"s3://{bucket}/{key}" in str(error.cause)
    (moved,) = await drain_queue(sqs, dead_letters)
    assert key in moved["Body"]


async def test_malformed_pointer_fails_the_message_without_the_handler(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    size = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "12"}}
    await sqs.send_message(QueueUrl=url, MessageBody="not a pointer", MessageAttributes=size)  # type: ignore[arg-type]
    await sqs.send_message(
        QueueUrl=url,
        MessageBody=f'["com.example.Unknown",{{"s3BucketName":"{bucket}","s3Key":"k"}}]',
        MessageAttributes=size,  # type: ignore[arg-type]
    )
    handler = Seen()
    errors: list[MQError] = []
    async with consuming(url, S3Payloads(bucket, client=s3), handler, errors):
        # Distinct causes: an at-least-once duplicate may fail twice before the other message is received.
        await until(lambda: len({str(e) for e in errors}) >= 2, what="both messages failed")
    assert handler.messages == []
    causes = {str(e.cause) for e in errors if isinstance(e, HandlerError)}
    assert any("not a JSON pointer" in cause for cause in causes)
    assert any(
        "unknown S3 pointer class 'com.example.Unknown'" in cause and f"s3://{bucket}/k" in cause for cause in causes
    )
    visible, in_flight = await queue_counts(sqs, url)
    assert visible + in_flight == 2


async def test_s3_outage_on_delete_leaves_the_message_deleted_and_the_orphan_counted(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_queue()
    key = await send_offloaded(sqs, s3, url, bucket, LARGE)
    # The payload is read through the working client; deletes go through a client whose S3 endpoint is a
    # loopback port nobody listens on: a real connection failure, which moto itself cannot produce.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_closed_port()}")
    async with create_s3_client() as unreachable:
        payloads = S3Payloads(bucket, client=unreachable)
        resolving = S3Payloads(bucket, client=s3)
        handler = Seen()
        async with (
            payloads,
            Server(
                url,
                resolving.wrap_handler(handler),
                observer=payloads.observers,
                wait_time_seconds=1,
                deletion_interval_s=0.2,
            ) as server,
        ):
            await until(lambda: server.health.deleted >= 1, what="the message deleted")
    assert handler.messages[0][0] == LARGE
    assert await queue_counts(sqs, url) == (0, 0)  # SQS first: the message is deleted all the same
    assert await object_keys(s3, bucket) == [key]  # the object stays behind
    stats = payloads.stats()
    assert stats["deleted"] == 0
    assert stats["orphaned"] >= 1  # one per delivery the Server deleted


async def test_payloads_are_kept_when_deletion_is_off(
    sqs: SQSClient, s3: S3Client, bucket: str, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    key = await send_offloaded(sqs, s3, url, bucket, LARGE)
    handler = Seen()
    async with consuming(url, S3Payloads(bucket, client=s3, delete_payloads=False), handler) as server:
        await until(lambda: server.health.deleted >= 1, what="the message deleted")
    assert await queue_counts(sqs, url) == (0, 0)
    assert await object_keys(s3, bucket) == [key]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
