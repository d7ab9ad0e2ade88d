"""The deleter's handling of failed entries.

A real SQS server cannot be made to fail one entry of a DeleteMessageBatch for a passing reason, so these
tests wrap the real client and rewrite its responses; the real server still deletes what succeeds.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, cast

from service import DeleteError, Message, MQError, PipelineObserver
from service.consumer.deleter import Deleter
from tests.support.sqs import QueueFactory, drain_queue, queue_counts, send_messages

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class FlakyDeletes:
    """Forwards to the real client; the first call reports entry 0 as failed with the given fault."""

    def __init__(self, client: SQSClient, *, sender_fault: bool, code: str) -> None:
        self.client = client
        self.sender_fault = sender_fault
        self.code = code
        self.calls: list[list[str]] = []

    async def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([e["Id"] for e in Entries])
        if len(self.calls) > 1:
            return dict(await self.client.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries))  # type: ignore[arg-type]
        response = dict(await self.client.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:]))  # type: ignore[arg-type]
        failed = {"Id": Entries[0]["Id"], "Code": self.code, "Message": "injected", "SenderFault": self.sender_fault}
        failures: list[Any] = response.get("Failed", [])  # type: ignore[assignment]
        response["Failed"] = [*failures, failed]
        return response


class Deleted(PipelineObserver):
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.some = asyncio.Event()

    def deleted(self, messages: Any) -> None:
        self.ids.extend(m.message_id for m in messages)
        self.some.set()


async def received(sqs: SQSClient, url: str) -> list[Message]:
    return [Message(url, raw, visibility_timeout=30) for raw in await drain_queue(sqs, url)]


async def run_deleter(client: Any, url: str, messages: list[Message]) -> tuple[Deleted, list[MQError]]:
    errors: list[MQError] = []
    observer = Deleted()
    deleter = Deleter(client, url, batch_max_messages=10, interval_s=0.1, observer=observer, on_error=errors.append)
    running = asyncio.create_task(deleter.run())
    for m in messages:
        await deleter.put(m)
    deleter.close()
    await running
    return observer, errors


async def test_a_transient_entry_failure_is_retried(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b", "c"])
    messages = await received(sqs, url)
    client = FlakyDeletes(sqs, sender_fault=False, code="InternalError")
    observer, errors = await run_deleter(client, url, messages)
    assert errors == []
    assert sorted(observer.ids) == sorted(m.message_id for m in messages)
    assert client.calls == [["0", "1", "2"], ["0"]]  # only the failed entry went again
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_permanent_entry_failure_is_reported_not_retried(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b"])
    messages = await received(sqs, url)
    client = FlakyDeletes(sqs, sender_fault=True, code="ReceiptHandleIsInvalid")
    observer, errors = await run_deleter(client, url, messages)
    assert len(client.calls) == 1
    assert len(observer.ids) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], DeleteError)
    assert errors[0].cause.code == "ReceiptHandleIsInvalid"
    assert errors[0].message_id == messages[0].message_id
    assert await queue_counts(sqs, url) == (0, 1)  # not deleted: it will come back and be handled again


async def test_the_same_receipt_twice_does_not_fail_the_batch(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b"])
    messages = await received(sqs, url)
    observer, errors = await run_deleter(sqs, url, [messages[0], messages[1], messages[0]])
    assert errors == []
    assert sorted(observer.ids) == sorted(m.message_id for m in messages)
    assert await queue_counts(sqs, url) == (0, 0)


async def test_deletes_wait_at_most_the_interval(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a"])
    messages = await received(sqs, url)
    observer = Deleted()
    client = TimedDeletes(sqs)
    timed = cast("SQSClient", client)
    deleter = Deleter(timed, url, batch_max_messages=10, interval_s=1.0, observer=observer, on_error=lambda e: None)
    running = asyncio.create_task(deleter.run())
    began = time.monotonic()
    await deleter.put(messages[0])
    await observer.some.wait()
    deleter.close()
    await running
    # A partial batch goes out one interval after its first entry, not up to two. Timed when the call is made, so
    # that a slow answer from a busy SQS server does not count.
    waited = client.called_at[0] - began
    assert 0.95 <= waited < 1.9
    assert await queue_counts(sqs, url) == (0, 0)


class TimedDeletes:
    """Forwards to the real client, noting when each DeleteMessageBatch call is made."""

    def __init__(self, client: SQSClient) -> None:
        self.client = client
        self.called_at: list[float] = []

    async def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.called_at.append(time.monotonic())
        return dict(await self.client.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries))  # type: ignore[arg-type]
