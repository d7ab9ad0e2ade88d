"""A dead-letter send that fails never deletes the rejected message; it is rejected again on its next receive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service import ExponentialRetryPolicy, Message, MQError, Reject, RejectError, Server
from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, queue_counts, send_messages, until

from .fault_proxy import FaultProxy

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_a_dead_letter_send_failing_for_good_leaves_the_message_for_the_retry_policy(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    # moto never fails a SendMessageBatch for a passing reason: the 500s come from the fault proxy, one per attempt
    # of the whole retry budget, so the first rejection's send fails for good.
    url = await make_queue(max_receive_count=5)
    dlq = await dead_letter_queue_of(sqs, url)
    await send_messages(sqs, url, ["poison"])
    through_proxy.add("error500", operations=["SendMessageBatch"], calls=DEFAULT_BATCH_ATTEMPTS)
    receive_counts: list[int] = []
    errors: list[MQError] = []

    async def handler(message: Message) -> None:
        receive_counts.append(message.receive_count)
        raise Reject("poison")

    server = Server(
        url,
        handler,
        client=proxied_sqs,
        wait_time_seconds=0,
        deletion_interval_s=0.1,
        error_handler=errors.append,
        retry_policy=ExponentialRetryPolicy(base_s=0.5),  # back after 1 s
    )
    async with server:
        await until(lambda: server.health.rejected == 1 and server.health.deleted == 1, what="rejected on a retry")
    [failure] = [e for e in errors if isinstance(e, RejectError)]
    assert failure.cause is not None
    assert failure.cause.code == "InternalError"
    assert through_proxy.faults["SendMessageBatch"] == DEFAULT_BATCH_ATTEMPTS
    # Not deleted after the failed send: received again, and rejected then.
    assert receive_counts[:2] == [1, 2]
    copies = await drain_queue(sqs, dlq)
    assert [c["Body"] for c in copies] == ["poison"]
    assert await queue_counts(sqs, url) == (0, 0)
