"""The fault proxy itself: each fault reaches the client as the error our retry loops classify, calls are counted."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from service.sqs.batch import error_from_exception
from tests.support.sqs import QueueFactory, until

from .fault_proxy import Fault, FaultProxy

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("throttle", "ThrottlingException"),
        ("error500", "InternalError"),
        ("error503", "ServiceUnavailable"),
        ("reset", None),
        ("drop", None),
        ("lose_response", None),
    ],
)
async def test_each_fault_reaches_the_client_as_a_transient_error(
    make_queue: QueueFactory,
    proxied_sqs: SQSClient,
    through_proxy: FaultProxy,
    fault: Fault,
    code: str | None,
) -> None:
    url = await make_queue()
    through_proxy.add(fault, operations=["SendMessage"], calls=1)
    with pytest.raises((ClientError, BotoCoreError)) as raised:
        await proxied_sqs.send_message(QueueUrl=url, MessageBody="x")
    error = error_from_exception(raised.value, "SendMessage")
    if code is not None:
        assert error.code == code
    assert error.transient, "our retry loops must retry it"
    await proxied_sqs.send_message(QueueUrl=url, MessageBody="y")  # the rule is spent: forwarded
    assert through_proxy.calls["SendMessage"] == 2
    assert through_proxy.faults["SendMessage"] == 1
    response = await proxied_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    bodies = sorted(m["Body"] for m in response.get("Messages", []))
    assert bodies == (["x", "y"] if fault == "lose_response" else ["y"])


async def test_latency_and_time_windows(
    make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    url = await make_queue()
    through_proxy.add("latency", operations=["GetQueueAttributes"], latency_s=0.3, calls=1)
    started = time.monotonic()
    await proxied_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert time.monotonic() - started >= 0.3
    # A window that opens with the first call it affects: that call fails however long it takes to arrive.
    rule = through_proxy.add("error503", window_s=0.5)
    with pytest.raises(ClientError):
        await proxied_sqs.get_queue_attributes(QueueUrl=url)
    await until(lambda: rule.spent, what="the time window over")
    # A rule for a duration from now: once it has run out, calls are forwarded.
    expired = through_proxy.add("error503", duration_s=0.2)
    await until(lambda: expired.spent, what="the duration over")
    await proxied_sqs.get_queue_attributes(QueueUrl=url)
    assert through_proxy.faults == {"GetQueueAttributes": 2}
