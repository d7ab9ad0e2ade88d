"""Fixtures: a real moto SQS server on a loopback port, shared by the session; fresh queues per test."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from moto.server import ThreadedMotoServer

from service.client import create_client

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

QueueFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; the AWS environment points every client at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL_SQS=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_AWS_ENV = (
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_PROFILE",
)


class CallCounter(Counter[str]):
    """Counts the SQS API calls a client makes, by operation name."""

    def record(self, model: Any, **_: Any) -> None:
        """A botocore `before-call` hook."""
        self[model.name] += 1


@pytest.fixture
async def sqs(sqs_endpoint: str) -> AsyncIterator[SQSClient]:
    """A real aiobotocore SQS client talking to the moto server over HTTP."""
    async with create_client() as client:
        yield client


@pytest.fixture
def calls(sqs: SQSClient) -> CallCounter:
    """Counts the calls made through the `sqs` fixture's client."""
    counter = CallCounter()
    sqs.meta.events.register("before-call.sqs", counter.record)
    return counter


@pytest.fixture
async def make_queue(sqs: SQSClient) -> AsyncIterator[QueueFactory]:
    """Creates uniquely named queues: `await make_queue(max_receive_count=2)` adds a dead-letter queue."""
    created: list[str] = []

    async def factory(*, fifo: bool = False, max_receive_count: int | None = None, **attributes: str) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
        attrs = dict(attributes)
        if fifo:
            attrs.setdefault("FifoQueue", "true")
        if max_receive_count is not None:
            dlq_url = await factory(fifo=fifo)
            dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))["Attributes"][
                "QueueArn"
            ]
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
        url = (await sqs.create_queue(QueueName=name, Attributes=attrs))["QueueUrl"]  # type: ignore[arg-type]
        created.append(url)
        return url

    yield factory
    for url in created:
        await sqs.delete_queue(QueueUrl=url)


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


async def until(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` on the event loop until it holds (for state no event reports); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll an async check until it holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.1)
