"""Fixtures: a real moto SQS server on a loopback port, shared by the session; fresh queues per test."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, cast

import pytest
from moto.server import ThreadedMotoServer

from service.sqs.client import CLIENT_KINDS, ClientKind, create_client
from tests.support.redis import redis_server
from tests.support.sqs import CallCounter, QueueFactory

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


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
        # moto serves DynamoDB on the same port (the idempotency store's table).
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
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
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_PROFILE",
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 and a free port for the session (fails, never skips, when missing)."""
    try:
        with redis_server() as (url, _process):
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
async def sqs(sqs_endpoint: str) -> AsyncIterator[SQSClient]:
    """A real aiobotocore SQS client talking to the moto server over HTTP."""
    async with create_client(kind="botocore") as client:
        yield client


@pytest.fixture(params=CLIENT_KINDS)
def sqs_client_kind(request: pytest.FixtureRequest) -> ClientKind:
    """Each kind of SQS client the service can run on: tests that take it run once per kind."""
    return cast(ClientKind, request.param)


@pytest.fixture
async def pipeline_sqs(sqs_endpoint: str, sqs_client_kind: ClientKind) -> AsyncIterator[SQSClient]:
    """An SQS client of each kind (lean, botocore) for the Server or Publisher under test."""
    async with create_client(kind=sqs_client_kind) as client:
        yield client


@pytest.fixture
def calls(pipeline_sqs: SQSClient) -> CallCounter:
    """Counts the calls made through the `pipeline_sqs` fixture's client."""
    counter = CallCounter()
    counter.attach(pipeline_sqs)
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
