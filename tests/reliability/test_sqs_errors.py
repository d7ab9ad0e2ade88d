"""Throttling, 5xx, resets and lost answers on send, receive, delete and change visibility: retried, nothing lost."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import TYPE_CHECKING

from service import DeleteError, ExponentialRetryPolicy, Message, MQError, Publisher, Server
from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages, until

from .fault_proxy import Fault, FaultProxy
from .invariants import Ledger, body_for, check, collect_state, id_of, make_ids

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

SEND = ["SendMessageBatch"]
RECEIVE = ["ReceiveMessage"]
DELETE = ["DeleteMessageBatch"]
CHANGE = ["ChangeMessageVisibilityBatch"]
# Longer than a delete batch's whole retry budget (5 attempts, 1.5-3 s of backoff), with room for a busy machine's
# slower calls: the first batch in the outage fails for good.
DELETE_OUTAGE_S = 6.0


async def test_send_faults_are_retried_and_every_message_is_published(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy, ledger: Ledger
) -> None:
    url = await make_queue()
    ids = make_ids(50, "sent")
    for fault in ("throttle", "throttle", "error500", "error503", "lose_response"):
        through_proxy.add(fault, operations=SEND, calls=1)
    async with Publisher(url, client=proxied_sqs, publish_interval_s=0.05) as publisher:
        message_ids = await asyncio.gather(*(publisher.publish(body_for(i)) for i in ids))
    assert len(set(message_ids)) == len(ids)
    assert through_proxy.faults["SendMessageBatch"] == 5

    sqs_message_ids: defaultdict[str, set[str]] = defaultdict(set)

    async def handler(message: Message) -> None:
        sqs_message_ids[id_of(message.body)].add(message.message_id)
        ledger.succeeded(message)

    server = Server(
        url,
        handler,
        client=sqs,
        concurrency=10,
        wait_time_seconds=0,
        deletion_interval_s=0.2,
        observer=ledger.observer(),
    )
    async with server:
        await until(lambda: set(ids) <= set(ledger.successes), what="every published message handled")
        await eventually(lambda: _empty(sqs, url), what="the queue empty")
    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(f"send faults: {through_proxy.faults['SendMessageBatch']} injected; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    # The batch whose answer was lost had reached SQS: sent again, it is in the queue twice (two SQS messages with
    # one body). Counted by SQS message, not by handling: SQS may also deliver one message twice.
    sent_twice = sorted(i for i, message_ids in sqs_message_ids.items() if len(message_ids) > 1)
    assert 1 <= len(sent_twice) <= 10, sent_twice


async def test_receive_delete_and_visibility_faults_lose_nothing(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy, ledger: Ledger
) -> None:
    url = await make_queue(max_receive_count=5)
    ids = make_ids(60, "faults")
    flaky = set(ids[::5])  # each fails its first attempt: a retry delay goes out as ChangeMessageVisibilityBatch
    await send_messages(sqs, url, [body_for(i) for i in ids])
    proxy = through_proxy
    receive_faults: tuple[Fault, ...] = ("throttle", "error500", "error503")
    change_faults: tuple[Fault, ...] = ("throttle", "throttle", "error503")
    for fault in receive_faults:
        proxy.add(fault, operations=RECEIVE, calls=1)
    for fault in change_faults:
        proxy.add(fault, operations=CHANGE, calls=1)
    outage = proxy.add("error500", operations=DELETE, window_s=DELETE_OUTAGE_S)
    proxy.add("throttle", operations=DELETE, calls=2)
    proxy.add("lose_response", operations=DELETE, calls=1)
    errors: list[MQError] = []
    failed_once: set[str] = set()

    async def handler(message: Message) -> None:
        if message.body in failed_once or message.body not in {body_for(i) for i in flaky}:
            ledger.succeeded(message)
            return
        failed_once.add(message.body)
        raise RuntimeError("a first attempt that fails")

    server = Server(
        url,
        handler,
        client=proxied_sqs,
        concurrency=10,
        wait_time_seconds=1,
        visibility_timeout=2,
        deletion_interval_s=0.5,
        retry_policy=ExponentialRetryPolicy(base_s=0.5),
        error_handler=errors.append,
        observer=ledger.observer(),
    )
    async with server:
        await until(lambda: set(ids) <= set(ledger.deleted), timeout_s=45, what="every message deleted")
    retried = [calls for calls in proxy.attempts("DeleteMessageBatch").values() if len(calls) > 1]
    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(f"receive/delete/visibility faults: {dict(proxy.faults)}; {report.summary()}")

    assert proxy.faults["ReceiveMessage"] == 3
    assert proxy.faults["ChangeMessageVisibilityBatch"] == 3
    assert proxy.faults["DeleteMessageBatch"] >= 5 + 3
    assert outage.injected >= DEFAULT_BATCH_ATTEMPTS, "the delete outage outlasts a batch's retries"
    assert retried, "failed delete batches are retried"
    for calls in retried:
        assert len(calls) <= DEFAULT_BATCH_ATTEMPTS
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
        # Retry n waits at least half of min(5, 0.2 * 2**n) seconds: an exponential backoff, not a hot loop.
        assert all(gap >= 0.9 * min(5.0, 0.2 * 2**n) / 2 for n, gap in enumerate(gaps)), gaps
    assert any(isinstance(error, DeleteError) for error in errors), "a delete batch should have failed for good"
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    # The batch whose delete failed for good came back after its visibility timeout and was handled again.
    assert report.duplicates >= 1, report.summary()
    assert failed_once == {body_for(i) for i in flaky}


async def _empty(sqs: SQSClient, url: str) -> bool:
    return await queue_counts(sqs, url) == (0, 0)
