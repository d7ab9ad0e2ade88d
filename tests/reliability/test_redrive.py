"""The client-side message move (redrive where the server has no StartMessageMoveTask) under faults: a send or a
delete that fails mid-move loses nothing, and duplicates at most the batch it failed in."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS
from service.sqs.move import ClientSideMove, MoveCounts, MoveFailed
from tests.support.sqs import QueueFactory, drain_queue, eventually, queue_counts, send_messages

from .fault_proxy import FaultProxy

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

BODIES = [f"dead-{i:02d}" for i in range(30)]
# Short, so messages whose batch failed after the send come back to the source within the test.
VISIBILITY_S = 2


async def bodies_in(sqs: SQSClient, url: str) -> Counter[str]:
    """Every body in a queue (received, not deleted: invisible for a minute after)."""
    return Counter(message["Body"] for message in await drain_queue(sqs, url))


async def setup(sqs: SQSClient, make_queue: QueueFactory) -> tuple[str, str]:
    source, destination = await make_queue(), await make_queue()
    await send_messages(sqs, source, BODIES)
    return source, destination


def never() -> bool:
    return False


async def test_a_send_failing_mid_move_loses_nothing(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    source, destination = await setup(sqs, make_queue)
    move = ClientSideMove(proxied_sqs, source, destination, visibility_timeout_s=VISIBILITY_S)
    assert await move.move_batch(10) == 10
    through_proxy.add("error500", operations=["SendMessageBatch"], calls=DEFAULT_BATCH_ATTEMPTS)
    with pytest.raises(MoveFailed) as failed:
        await move.move_batch(10)
    assert failed.value.moved == 0
    assert failed.value.error.code == "InternalError"
    # The unsent batch was handed back at once, not left invisible, and nothing was deleted.
    assert await queue_counts(sqs, source) == (20, 0)
    assert await queue_counts(sqs, destination) == (10, 0)

    counts = MoveCounts(to_move=20)
    await ClientSideMove(proxied_sqs, source, destination).run(counts, never)
    assert counts.moved == 20
    assert await bodies_in(sqs, destination) == Counter(BODIES)
    assert await queue_counts(sqs, source) == (0, 0)


async def test_a_lost_send_answer_duplicates_one_batch_and_loses_nothing(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    source, destination = await setup(sqs, make_queue)
    through_proxy.add("lose_response", operations=["SendMessageBatch"], calls=1)
    counts = MoveCounts(to_move=30)
    await ClientSideMove(proxied_sqs, source, destination).run(counts, never)
    found = await bodies_in(sqs, destination)
    assert set(found) == set(BODIES)
    assert sum(found.values()) - len(BODIES) <= 10  # the batch sent again after its answer was lost
    assert await queue_counts(sqs, source) == (0, 0)


async def test_a_delete_failing_mid_move_duplicates_at_most_that_batch(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    source, destination = await setup(sqs, make_queue)
    move = ClientSideMove(proxied_sqs, source, destination, visibility_timeout_s=VISIBILITY_S)
    assert await move.move_batch(10) == 10
    through_proxy.add("error500", operations=["DeleteMessageBatch"], calls=DEFAULT_BATCH_ATTEMPTS)
    with pytest.raises(MoveFailed) as failed:
        await move.move_batch(10)
    assert failed.value.moved == 10  # stored in the destination, not deleted from the source
    assert await queue_counts(sqs, destination) == (20, 0)

    async def back_in_source() -> bool:
        return await queue_counts(sqs, source) == (20, 0)

    await eventually(back_in_source, what="the undeleted batch visible again in the source")
    counts = MoveCounts(to_move=20)
    await ClientSideMove(proxied_sqs, source, destination).run(counts, never)
    found = await bodies_in(sqs, destination)
    assert set(found) == set(BODIES)
    assert sum(found.values()) == len(BODIES) + 10  # exactly the batch whose delete failed, twice
    assert await queue_counts(sqs, source) == (0, 0)


async def test_a_fifo_move_keeps_group_attributes_and_order(sqs: SQSClient, make_queue: QueueFactory) -> None:
    source, destination = await make_queue(fifo=True), await make_queue(fifo=True)
    bodies = [f"f{i}" for i in range(12)]
    for i, body in enumerate(bodies):
        await sqs.send_message(
            QueueUrl=source,
            MessageBody=body,
            MessageGroupId="g1",
            MessageDeduplicationId=f"d{i}",
            MessageAttributes={"route": {"DataType": "String", "StringValue": "orders"}},
        )
    counts = MoveCounts(to_move=12)
    await ClientSideMove(sqs, source, destination).run(counts, never)
    assert counts.moved == 12
    assert sum(await queue_counts(sqs, destination)) == 12
    moved = await drain_queue(sqs, destination)  # the group is locked after the first ten: enough to check
    assert [m["Body"] for m in moved] == bodies[: len(moved)]
    assert len(moved) >= 10
    for message in moved:
        assert message["Attributes"]["MessageGroupId"] == "g1"
        assert message["MessageAttributes"]["route"]["StringValue"] == "orders"


async def test_the_move_keeps_to_its_rate(sqs: SQSClient, make_queue: QueueFactory) -> None:
    source, destination = await setup(sqs, make_queue)
    counts = MoveCounts(to_move=15)
    started = time.monotonic()
    await ClientSideMove(sqs, source, destination, per_s=5).run(counts, never)
    elapsed_s = time.monotonic() - started
    assert counts.moved == 15
    # Three batches of five at five a second: the second may go after 1 s, the third after 2 s.
    assert elapsed_s >= 2.0
    assert await queue_counts(sqs, destination) == (15, 0)
