"""SQS helpers for tests: queues, sends, counts, and waiting for a condition."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from service.sqs.lean import LeanSQSClient

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


QueueFactory = Callable[..., Awaitable[str]]


class CallCounter(Counter[str]):
    """Counts the SQS API calls a client makes, by operation name."""

    def attach(self, client: SQSClient | LeanSQSClient) -> None:
        """Count `client`'s calls: through the lean client's `on_call`, or botocore's `before-call` event."""
        if isinstance(client, LeanSQSClient):
            client.on_call(self.lean_call)
        else:
            client.meta.events.register("before-call.sqs", self.record)

    def record(self, model: Any, **_: Any) -> None:
        """A botocore `before-call` hook."""
        self[model.name] += 1

    def lean_call(self, operation: str, params: Any) -> None:
        """A lean client `on_call` hook."""
        self[operation] += 1


async def send_messages(sqs: SQSClient, queue_url: str, bodies: list[str], **entry: Any) -> None:
    """Send `bodies` in batches of 10 with the same extra entry fields."""
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body, **entry} for i, body in enumerate(bodies[start : start + 10])]
        response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        assert not response.get("Failed"), response


async def queue_counts(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) message counts of a queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    response = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)  # type: ignore[arg-type]
    attrs = {str(k): v for k, v in response["Attributes"].items()}
    return int(attrs[names[0]]), int(attrs[names[1]])


async def drain_queue(sqs: SQSClient, queue_url: str, *, wait_s: int = 0) -> list[dict[str, Any]]:
    """Receive (without deleting) everything visible in a queue."""
    found: list[dict[str, Any]] = []
    while True:
        response = await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        )
        batch = response.get("Messages", [])
        if not batch:
            return found
        found.extend(batch)  # type: ignore[arg-type]


async def dead_letter_queue_of(sqs: SQSClient, queue_url: str) -> str:
    """The URL of a queue's dead-letter queue, from its redrive policy."""
    attrs = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    arn = json.loads(attrs["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    return (await sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1]))["QueueUrl"]


# How long `until` and `eventually` wait by default: what takes a second on a quiet machine can take ten on a
# busy CI runner; a generous bound costs nothing when the condition holds early.
DEFAULT_WAIT_S = 30.0


async def until(condition: Callable[[], bool], timeout_s: float = DEFAULT_WAIT_S, what: str = "condition") -> None:
    """Poll `condition` on the event loop until it holds (for state no event reports); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.02)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = DEFAULT_WAIT_S, what: str = "condition"
) -> None:
    """Poll an async check until it holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.1)
