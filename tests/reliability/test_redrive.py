"""Redrive. The client-side message move (where the server has no StartMessageMoveTask) under faults: a send or a
delete that fails mid-move loses nothing, and duplicates at most the batch it failed in. And the StartMessageMoveTask
path, against a fake endpoint (moto has no message move tasks)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from service.sqs.batch import DEFAULT_BATCH_ATTEMPTS
from service.sqs.client import create_client
from service.sqs.move import ClientSideMove, MoveCounts, MoveFailed
from service.sqs.queues import QueueView
from service.sqs.redrive import Redrive
from tests.support.sqs import QueueFactory, drain_queue, eventually, queue_counts, send_messages, until

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


class MoveTaskServer:
    """A fake SQS endpoint with message move tasks, which moto lacks: the one way to drive the StartMessageMoveTask
    path here. It answers the three calls in SQS's JSON protocol and moves `step` messages per ListMessageMoveTasks."""

    def __init__(self, to_move: int, step: int) -> None:
        self.to_move, self.step = to_move, step
        self.moved = 0
        self.status = "RUNNING"
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.headers["X-Amz-Target"].removeprefix("AmazonSQS.")
        body = await request.json()
        self.requests.append((operation, body))
        if operation == "StartMessageMoveTask":
            answer: dict[str, Any] = {"TaskHandle": "task-1"}
        elif operation == "CancelMessageMoveTask":
            self.status = "CANCELLING"
            answer = {"ApproximateNumberOfMessagesMoved": self.moved}
        else:
            answer = {"Results": [self._progress()]}
        return web.json_response(answer, content_type="application/x-amz-json-1.0")

    def _progress(self) -> dict[str, Any]:
        if self.status == "CANCELLING":
            self.status = "CANCELLED"
        elif self.status == "RUNNING":
            self.moved = min(self.to_move, self.moved + self.step)
            self.status = "COMPLETED" if self.moved == self.to_move else "RUNNING"
        return {
            "TaskHandle": "task-1",
            "Status": self.status,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "SourceArn": DLQ.arn,
        }


DLQ = QueueView("http://127.0.0.1/1/dlq", "arn:aws:sqs:us-east-1:123456789012:dlq", 6, 0, 0, None, None)
SOURCE = QueueView("http://127.0.0.1/1/q", "arn:aws:sqs:us-east-1:123456789012:q", 0, 0, 0, 3, DLQ.arn)


@asynccontextmanager
async def move_task_server(fake: MoveTaskServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SQSClient]:
    app = web.Application()
    app.router.add_post("/", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{port}")
    try:
        async with create_client(kind="botocore") as client:  # message move tasks: aiobotocore only
            yield client
    finally:
        await runner.cleanup()


async def test_where_sqs_has_move_tasks_it_moves_and_reports_progress(
    sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = MoveTaskServer(to_move=6, step=2)
    async with move_task_server(fake, monkeypatch) as client, asyncio.TaskGroup() as tasks:
        redrive = Redrive(lambda: client, tasks.create_task, poll_interval_s=0.05)
        task = await redrive.start(DLQ, SOURCE, to_source=True, per_s=50)
        assert task.mode == "sqs"
        await asyncio.wait_for(task.done.wait(), 10)
    assert task.as_dict() | {"state": "completed", "moved": 6, "to_move": 6} == task.as_dict()
    assert fake.requests[0] == ("StartMessageMoveTask", {"SourceArn": DLQ.arn, "MaxNumberOfMessagesPerSecond": 50})


async def test_a_move_task_is_cancelled_in_sqs(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = MoveTaskServer(to_move=1000, step=1)
    destination = dataclasses.replace(SOURCE, url="http://127.0.0.1/1/other", arn="arn:aws:sqs:us-east-1:1:other")
    async with move_task_server(fake, monkeypatch) as client, asyncio.TaskGroup() as tasks:
        redrive = Redrive(lambda: client, tasks.create_task, poll_interval_s=0.05)
        task = await redrive.start(DLQ, destination, to_source=False, per_s=None)
        await until(lambda: task.counts.moved >= 2, what="progress reported")
        cancelled = await redrive.cancel()
    assert cancelled is not None
    assert cancelled.state == "cancelled"
    assert 2 <= cancelled.counts.moved < 1000
    assert fake.requests[0] == ("StartMessageMoveTask", {"SourceArn": DLQ.arn, "DestinationArn": destination.arn})
    assert ("CancelMessageMoveTask", {"TaskHandle": "task-1"}) in fake.requests
