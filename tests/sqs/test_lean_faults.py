"""Faults through the fault proxy: the lean client raises what aiobotocore raises, so the pipeline classifies alike."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.credentials import AioRefreshableCredentials
from botocore.exceptions import BotoCoreError, ChecksumError, ClientError

from service.sqs import protocol
from service.sqs.batch import error_from_exception
from service.sqs.client import CLIENT_KINDS, create_client
from tests.reliability.fault_proxy import Fault, FaultProxy
from tests.support.sqs import QueueFactory, send_messages

RECEIVE = ["ReceiveMessage"]


@pytest.fixture
async def proxy(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the session's SQS server; clients created from now on go through it."""
    async with FaultProxy(sqs_endpoint) as fault_proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", fault_proxy.url)
        yield fault_proxy


async def failed_receive(kind: Any, queue_url: str) -> tuple[str, bool]:
    """The code and transience the pipeline sees for a receive that fails."""
    async with create_client(kind=kind) as client:
        with pytest.raises((ClientError, BotoCoreError)) as raised:
            await client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    error = error_from_exception(raised.value, "ReceiveMessage")
    return error.code, error.transient


@pytest.mark.parametrize(
    ("fault", "code", "transient"),
    [
        ("throttle", "ThrottlingException", True),
        ("error500", "InternalError", True),
        ("error503", "ServiceUnavailable", True),
        ("refuse_credentials", "InvalidClientTokenId", False),
        ("drop", "ConnectionClosedError", True),
        ("reset", "EndpointConnectionError", True),
    ],
)
async def test_a_fault_is_classified_as_aiobotocores(
    fault: Fault, code: str, transient: bool, proxy: FaultProxy, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    seen = {}
    for kind in CLIENT_KINDS:
        proxy.add(fault, operations=RECEIVE, calls=1)
        seen[kind] = await failed_receive(kind, url)
    assert seen == {"lean": (code, transient), "botocore": (code, transient)}


async def test_a_missing_queue_is_classified_as_aiobotocores(proxy: FaultProxy, make_queue: QueueFactory) -> None:
    missing = await make_queue() + "-missing"
    seen = {kind: await failed_receive(kind, missing) for kind in CLIENT_KINDS}
    assert seen["lean"] == seen["botocore"] == ("AWS.SimpleQueueService.NonExistentQueue", False)


async def test_a_rotated_key_is_used_from_the_next_call(proxy: FaultProxy, make_queue: QueueFactory) -> None:
    url = await make_queue()
    current = {"access_key": "AKIAFIRST"}

    async def refresh() -> dict[str, str]:
        # Expiring within botocore's advisory window (15 min) but not expired: refreshed before every call.
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 12 * 60))
        return {"access_key": current["access_key"], "secret_key": "s", "token": "t", "expiry_time": expiry}

    credentials = AioRefreshableCredentials.create_from_metadata(await refresh(), refresh, "test-rotation")
    async with create_client(kind="lean", credentials=credentials) as client:
        for rotate_after in (False, False, True, False, False):
            await client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
            if rotate_after:
                current["access_key"] = "AKIASECOND"
    keys = [call.access_key for call in proxy.log if call.operation == "GetQueueAttributes"]
    assert keys == ["AKIAFIRST"] * 3 + ["AKIASECOND"] * 2


async def test_a_corrupted_body_is_detected(proxy: FaultProxy, sqs: Any, make_queue: QueueFactory) -> None:
    """The proxy injects the corruption (a real server cannot): each body loses its last character."""
    url = await make_queue()
    await send_messages(sqs, url, ["intact body"])
    proxy.add("corrupt_body", operations=RECEIVE, calls=1)
    async with create_client(kind="lean") as client:
        with pytest.raises(ChecksumError) as raised:
            await client.receive_message(QueueUrl=url, WaitTimeSeconds=0, VisibilityTimeout=0)
    error = error_from_exception(raised.value, "ReceiveMessage")
    assert (error.code, error.transient) == ("ChecksumError", True)  # retried like a network error
    # aiobotocore does not check SQS's digests: the same corruption reaches the caller unnoticed.
    proxy.add("corrupt_body", operations=RECEIVE, calls=1)
    async with create_client(kind="botocore") as client:
        received = await client.receive_message(QueueUrl=url, WaitTimeSeconds=0, VisibilityTimeout=0)
    assert [m["Body"] for m in received.get("Messages", [])] in ([], ["intact bod"])


def test_a_send_answer_with_a_wrong_digest_fails_the_entry() -> None:
    """SQS's answer is built here: no server returns a wrong digest for a send on request."""
    entries: list[dict[str, Any]] = [
        {"Id": "good", "MessageBody": "a", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "bad", "MessageBody": "b"},
    ]
    good = {
        "MD5OfMessageBody": protocol.md5_hex(b"a"),
        "MD5OfMessageAttributes": protocol.attributes_md5(entries[0]["MessageAttributes"]),
    }
    answer: dict[str, Any] = {
        "Successful": [
            {"Id": "good", "MessageId": "1", **good},
            {"Id": "bad", "MessageId": "2", "MD5OfMessageBody": protocol.md5_hex(b"not b")},
        ]
    }
    protocol.sent(entries, answer)  # type: ignore[arg-type]
    assert [entry["Id"] for entry in answer["Successful"]] == ["good"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in answer["Failed"]] == [("bad", "ChecksumError", False)]
