"""Reject: a message sent to its queue's dead-letter queue at once, on a standard and a FIFO queue, on both clients."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from service import (
    ExponentialRetryPolicy,
    HandlerError,
    Message,
    MQError,
    PipelineObserver,
    Reject,
    RejectError,
    Router,
    Server,
)
from service.sqs.dead_letter import REASON_ATTRIBUTE
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, eventually, queue_counts, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

ATTRIBUTES: dict[str, Any] = {
    "route": {"DataType": "String", "StringValue": "orders.created"},
    "tenant": {"DataType": "String", "StringValue": "acme"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    "amount": {"DataType": "Number", "StringValue": "42"},
}


class OrderCreated(BaseModel):
    order_id: int


class Outcomes(PipelineObserver):
    """What the pipeline reported: rejections, retry delays, deletions."""

    def __init__(self) -> None:
        self.rejected_ids: list[str] = []
        self.retries: list[tuple[str, int]] = []
        self.deleted_ids: list[str] = []
        self.checked = asyncio.Event()

    def queue_checked(self) -> None:
        self.checked.set()

    def rejected(self, messages: Sequence[Message]) -> None:
        self.rejected_ids.extend(m.message_id for m in messages)

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self.retries.append((message.message_id, delay_s))

    def deleted(self, messages: Sequence[Message]) -> None:
        self.deleted_ids.extend(m.message_id for m in messages)


@dataclass
class Seen:
    """The receive counts a handler saw, by message id."""

    counts: dict[str, list[int]]

    def __call__(self, message: Message) -> None:
        self.counts.setdefault(message.message_id, []).append(message.receive_count)


async def _send_one(sqs: SQSClient, url: str, body: str, **extra: Any) -> str:
    response = await sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES, **extra)
    return response["MessageId"]


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_reject_moves_the_message_to_the_dead_letter_queue_on_its_first_receive(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, fifo: bool
) -> None:
    url = await make_queue(fifo=fifo, max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    extra = {"MessageGroupId": "customer-7", "MessageDeduplicationId": "d1"} if fifo else {}
    message_id = await _send_one(sqs, url, '{"order": 1}', **extra)
    seen = Seen({})
    outcomes = Outcomes()

    async def handler(message: Message) -> None:
        seen(message)
        raise Reject("order 1 can never be fulfilled")

    server = Server(url, handler, client=pipeline_sqs, wait_time_seconds=0, deletion_interval_s=0.1, observer=outcomes)
    async with server:
        await until(lambda: message_id in outcomes.deleted_ids, what="the rejected message deleted from the source")
    assert outcomes.rejected_ids == [message_id]
    assert (server.health.rejected, server.health.deleted) == (1, 1)
    # Rejected on its first receive, never retried.
    assert seen.counts == {message_id: [1]}
    assert outcomes.retries == []
    assert await queue_counts(sqs, url) == (0, 0)

    [copy] = await drain_queue(sqs, dlq)
    assert copy["Body"] == '{"order": 1}'
    assert copy["Attributes"]["ApproximateReceiveCount"] == "1"
    attributes = copy["MessageAttributes"]
    assert {name: attributes[name] for name in ATTRIBUTES} == ATTRIBUTES
    assert attributes[REASON_ATTRIBUTE] == {"DataType": "String", "StringValue": "order 1 can never be fulfilled"}
    if fifo:
        assert copy["Attributes"]["MessageGroupId"] == "customer-7"
        assert copy["Attributes"]["MessageDeduplicationId"] == message_id


async def test_reject_without_a_dead_letter_queue_falls_back_to_the_retry_policy(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_queue()
    message_id = await _send_one(sqs, url, "poison")
    outcomes = Outcomes()
    errors: list[MQError] = []

    async def handler(message: Message) -> None:
        raise Reject("unreadable")

    server = Server(
        url,
        handler,
        client=pipeline_sqs,
        wait_time_seconds=0,
        observer=outcomes,
        error_handler=errors.append,
        retry_policy=ExponentialRetryPolicy(base_s=30),
    )
    with caplog.at_level(logging.WARNING, logger="service.consumer"):
        async with server:
            await until(lambda: outcomes.retries != [], what="the retry delay")
    warnings = [r.getMessage() for r in caplog.records if "no dead-letter queue" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "Reject falls back to the retry policy" in warnings[0]
    rejections = [e for e in errors if isinstance(e, RejectError)]
    assert [e.message_id for e in rejections] == [message_id]
    assert "has no dead-letter queue" in str(rejections[0])
    assert "the retry policy applies" in str(rejections[0])
    assert any(isinstance(e, HandlerError) and isinstance(e.cause, Reject) for e in errors)
    # The retry policy's delay for a first receive (30 s * 2^1), and nothing deleted.
    assert outcomes.retries == [(message_id, 60)]
    assert outcomes.rejected_ids == outcomes.deleted_ids == []
    assert server.health.rejected == 0
    assert await queue_counts(sqs, url) == (0, 1)


async def test_a_failed_dead_letter_send_never_deletes_the_message(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    # A real failure on the real server: the dead-letter queue is deleted after the start-up check named it,
    # so SendMessageBatch fails for good (QueueDoesNotExist).
    dlq = (await sqs.create_queue(QueueName=f"t-{uuid.uuid4().hex[:12]}-dlq"))["QueueUrl"]  # deleted below
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
    url = await make_queue(RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}))
    outcomes = Outcomes()
    errors: list[MQError] = []

    async def handler(message: Message) -> None:
        raise Reject("poison")

    server = Server(
        url,
        handler,
        client=pipeline_sqs,
        wait_time_seconds=1,
        deletion_interval_s=0.1,
        observer=outcomes,
        error_handler=errors.append,
        retry_policy=ExponentialRetryPolicy(base_s=30),
    )
    async with server:
        await asyncio.wait_for(outcomes.checked.wait(), 30)
        await sqs.delete_queue(QueueUrl=dlq)
        message_id = await _send_one(sqs, url, "poison")
        await until(lambda: any(isinstance(e, RejectError) for e in errors), what="the failed send reported")
        await until(lambda: outcomes.retries != [], what="the retry delay")
    [rejection] = [e for e in errors if isinstance(e, RejectError)]
    assert rejection.message_id == message_id
    assert rejection.cause is not None
    assert "the send to the dead-letter queue" in str(rejection)
    assert outcomes.rejected_ids == outcomes.deleted_ids == []
    assert (server.health.rejected, server.health.deleted) == (0, 0)
    assert outcomes.retries == [(message_id, 60)]
    assert await queue_counts(sqs, url) == (0, 1)


async def test_a_drain_finishes_a_rejection_in_progress(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    await _send_one(sqs, url, "poison")

    async def handler(message: Message) -> None:
        raise Reject("poison")

    # A long deletion interval: the dead-letter send waits for companions when the drain begins.
    server = Server(
        url, handler, client=pipeline_sqs, wait_time_seconds=0, deletion_interval_s=20, visibility_timeout=60
    )
    await server.start()
    try:
        await until(lambda: server.health.failed == 1, what="the handler rejected the message")
    finally:
        summary = await server.shutdown()
    assert (summary.rejected, summary.deleted) == (1, 1)
    # The copy is a new message of the dead-letter queue (a new id): matched by body and attributes.
    [copy] = await drain_queue(sqs, dlq)
    assert (copy["Body"], copy["MessageAttributes"]["tenant"]["StringValue"]) == ("poison", "acme")
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_malformed_body_on_a_typed_route_is_rejected_on_its_first_receive(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    handled: list[int] = []
    router = Router()

    @router.route("orders.created", model=OrderCreated)
    async def created(message: Message, order: OrderCreated) -> None:
        handled.append(order.order_id)

    not_json = await _send_one(sqs, url, "{not json")
    invalid = await _send_one(sqs, url, '{"order_id": "seven"}')
    valid = await _send_one(sqs, url, '{"order_id": 7}')
    outcomes = Outcomes()
    server = Server(url, router, client=pipeline_sqs, wait_time_seconds=0, deletion_interval_s=0.1, observer=outcomes)
    async with server:
        await until(lambda: {not_json, invalid, valid} <= set(outcomes.deleted_ids), what="all three deleted")
    assert handled == [7]
    assert sorted(outcomes.rejected_ids) == sorted([not_json, invalid])
    copies = {m["MessageId"]: m for m in await drain_queue(sqs, dlq)}
    # Copies are new messages in the dead-letter queue: matched to the originals by body.
    reasons = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in copies.values()}
    assert reasons.keys() == {"{not json", '{"order_id": "seven"}'}
    assert reasons["{not json"].startswith("the body is not valid JSON")
    assert reasons['{"order_id": "seven"}'].startswith("the body does not validate as OrderCreated: order_id:")
    assert outcomes.retries == []
    await eventually(lambda: _empty(sqs, url), what="the source empty")


async def test_on_invalid_retry_gives_an_invalid_body_ordinary_retries(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    router = Router()

    @router.route("orders.created", model=OrderCreated, on_invalid="retry")
    async def created(message: Message, order: OrderCreated) -> None:
        raise AssertionError("never called for an invalid body")

    message_id = await _send_one(sqs, url, "{not json")
    outcomes = Outcomes()
    errors: list[MQError] = []
    server = Server(
        url,
        router,
        client=pipeline_sqs,
        wait_time_seconds=0,
        observer=outcomes,
        error_handler=errors.append,
        retry_policy=ExponentialRetryPolicy(base_s=30),
    )
    async with server:
        await until(lambda: outcomes.retries != [], what="the retry delay")
    assert outcomes.retries == [(message_id, 60)]
    assert outcomes.rejected_ids == []
    [error] = [e for e in errors if isinstance(e, HandlerError)]
    assert not isinstance(error.cause, Reject)
    assert "the body is not valid JSON" in str(error.cause)
    assert await drain_queue(sqs, dlq) == []
    assert await queue_counts(sqs, url) == (0, 1)


async def _empty(sqs: SQSClient, url: str) -> bool:
    return await queue_counts(sqs, url) == (0, 0)
