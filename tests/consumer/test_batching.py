"""Batch handlers against a real SQS server: gathering, partial failure, retries, FIFO groups, drain."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from service import (
    BatchItemFailed,
    BatchResultError,
    ConfigError,
    ExponentialRetryPolicy,
    InvalidBody,
    Message,
    PipelineObserver,
    Retry,
    Router,
    Server,
    batch,
)
from service.aio.channel import Channel
from service.consumer.batching import BatchHandler
from service.consumer.gathering import BatchingProcessor
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

# A failed message comes back only after this long: within a test it stays failed, never redelivered.
SLOW_RETRY = ExponentialRetryPolicy(base_s=300)  # 600 s on the first receive


class Outcomes(PipelineObserver):
    """What became of each message: handled (by outcome), retried (with the delay), deleted, received."""

    def __init__(self) -> None:
        self.succeeded: list[str] = []
        self.failed: list[tuple[str, BaseException]] = []
        self.retries: dict[str, int] = {}
        self.deleted_bodies: set[str] = set()
        self.receives: list[list[str]] = []
        self.receipts: list[Sequence[Message]] = []

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        if messages:
            self.receives.append([m.message_id for m in messages])
            self.receipts.append(messages)

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        if error is None:
            self.succeeded.append(message.body)
        else:
            self.failed.append((message.body, error))

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self.retries[message.body] = delay_s

    def deleted(self, messages: Sequence[Message]) -> None:
        self.deleted_bodies.update(m.body for m in messages)


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_partial_failure_retries_only_the_failed_messages(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, fifo: bool
) -> None:
    url = await make_queue(fifo=fifo, ContentBasedDeduplication="true") if fifo else await make_queue()
    bodies = [f"m{i}" for i in range(50)]
    if fifo:  # every message a group of its own, so a failure holds back no other message
        for i, body in enumerate(bodies):
            await sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=f"g{i}")
    else:
        await send_messages(sqs, url, bodies)
    doomed = {"m7", "m23", "m41"}
    calls: list[int] = []

    async def insert(messages: Sequence[Message]) -> list[Message]:
        calls.append(len(messages))
        return [m for m in messages if m.body in doomed]

    outcomes = Outcomes()
    server = Server(
        url,
        batch(insert, max_messages=50, max_wait_s=2),
        client=pipeline_sqs,
        wait_time_seconds=0,
        retry_policy=SLOW_RETRY,
        observer=outcomes,
    )
    async with server:
        await until(lambda: len(outcomes.deleted_bodies) >= 47 and set(outcomes.retries) >= doomed, timeout_s=90)
    assert set(outcomes.retries) == doomed  # each failed message got the retry policy's delay
    assert all(delay == 600 for delay in outcomes.retries.values())
    assert outcomes.deleted_bodies == set(bodies) - doomed  # the 47 others were deleted, no failed one
    assert all(isinstance(error, BatchItemFailed) for _, error in outcomes.failed)
    # The three failed messages are still in the queue, invisible for their retry delay.
    assert await queue_counts(sqs, url) == (0, 3)


async def test_a_raising_batch_fails_every_message_and_retry_sets_the_delay(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(6)])

    async def down(messages: Sequence[Message]) -> None:
        raise Retry(300, "the database is down")

    outcomes = Outcomes()
    async with Server(url, batch(down, max_messages=6, max_wait_s=5), client=pipeline_sqs, observer=outcomes):
        await until(lambda: len(outcomes.retries) == 6)
    assert outcomes.retries == {f"m{i}": 300 for i in range(6)}
    assert outcomes.deleted_bodies == set()
    assert await queue_counts(sqs, url) == (0, 6)


async def test_a_mapping_says_how_each_message_failed(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["ok", "later", "broken"])

    async def handle(messages: Sequence[Message]) -> dict[Message, Exception]:
        by_body = {m.body: m for m in messages}
        return {by_body["later"]: Retry(120), by_body["broken"]: ValueError("bad row")}

    outcomes = Outcomes()
    server = Server(
        url,
        batch(handle, max_messages=3, max_wait_s=5),
        client=pipeline_sqs,
        retry_policy=SLOW_RETRY,
        observer=outcomes,
    )
    async with server:
        await until(lambda: len(outcomes.retries) == 2 and outcomes.deleted_bodies == {"ok"})
    assert outcomes.retries == {"later": 120, "broken": 600}
    assert {body: type(error) for body, error in outcomes.failed} == {"later": Retry, "broken": ValueError}


async def test_an_answer_naming_another_message_fails_the_whole_batch(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b"])
    stranger = Message(url, {"MessageId": "x", "ReceiptHandle": "x", "Body": "x"}, visibility_timeout=30)

    async def confused(messages: Sequence[Message]) -> list[Message]:
        return [stranger]

    outcomes = Outcomes()
    errors: list[Exception] = []
    server = Server(
        url,
        batch(confused, max_messages=2, max_wait_s=5),
        client=pipeline_sqs,
        retry_policy=SLOW_RETRY,
        observer=outcomes,
        error_handler=errors.append,
    )
    async with server:
        await until(lambda: len(outcomes.retries) == 2)
    assert outcomes.deleted_bodies == set()  # an answer that cannot be read deletes nothing
    assert {type(error) for _, error in outcomes.failed} == {BatchResultError}
    assert "not a message of its batch" in str(outcomes.failed[0][1])


async def test_a_batch_is_gathered_from_many_receives_within_the_window(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(100)])
    calls: list[int] = []
    done = asyncio.Event()

    async def bulk(messages: Sequence[Message]) -> None:
        calls.append(len(messages))
        done.set()

    outcomes = Outcomes()
    # The window is far longer than the test: the batch goes out because it is full, not because time ran out.
    server = Server(
        url, batch(bulk, max_messages=100, max_wait_s=120), client=pipeline_sqs, wait_time_seconds=0, observer=outcomes
    )
    async with server:
        await asyncio.wait_for(done.wait(), 60)
    assert calls[0] == 100
    assert len(outcomes.receives) >= 10  # a receive brings at most 10: the batch was gathered from many


async def test_without_a_window_a_call_gets_what_one_receive_brought(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(40)])
    calls: list[list[Message]] = []

    async def bulk(messages: Sequence[Message]) -> None:
        calls.append(list(messages))

    outcomes = Outcomes()
    server = Server(
        url,
        batch(bulk, max_messages=100, max_wait_s=0),
        client=pipeline_sqs,
        concurrency=4,
        wait_time_seconds=0,
        observer=outcomes,
    )
    async with server:
        await until(lambda: len(outcomes.deleted_bodies) >= 40)
    # Receipts, not message ids: moto, like SQS, may deliver one message to two receives.
    receive_of = {id(m): i for i, messages in enumerate(outcomes.receipts) for m in messages}
    for messages in calls:
        assert len({receive_of[id(m)] for m in messages}) == 1, "a call mixed messages of several receives"
        assert len(messages) <= 10


async def test_a_sync_batch_function_runs_in_a_thread(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b", "c"])
    seen: list[str] = []

    def bulk(messages: Sequence[Message]) -> None:
        seen.extend(m.body for m in messages)

    outcomes = Outcomes()
    async with Server(url, batch(bulk, max_messages=3, max_wait_s=5), client=pipeline_sqs, observer=outcomes):
        await until(lambda: outcomes.deleted_bodies == {"a", "b", "c"})
    assert sorted(seen) == ["a", "b", "c"]


async def test_fifo_batches_keep_group_order_through_a_failure(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(fifo=True, ContentBasedDeduplication="true")
    for i in range(6):
        for group in ("a", "b"):
            await sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group)
    failed_once: list[str] = []

    async def handle(messages: Sequence[Message]) -> dict[Message, Exception]:
        # Fails a2 once and reports every other message, a3 and later included, as handled.
        for message in messages:
            if message.body == "a2" and not failed_once:
                failed_once.append(message.body)
                return {message: Retry(1)}
        return {}

    outcomes = Outcomes()
    server = Server(
        url, batch(handle, max_messages=10, max_wait_s=1), client=pipeline_sqs, wait_time_seconds=0, observer=outcomes
    )
    async with server:
        await until(lambda: len(outcomes.deleted_bodies) == 12, timeout_s=60)
    # The call that failed a2 reported a3 and later as handled, but they were handed back, not settled as
    # successes: each group's first successes follow its publish order.
    assert failed_once == ["a2"]
    for group in ("a", "b"):
        firsts = list(dict.fromkeys(body for body in outcomes.succeeded if body.startswith(group)))
        assert firsts == [f"{group}{i}" for i in range(6)], outcomes.succeeded
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_failed_batch_hands_back_its_groups_message_still_on_its_way_in() -> None:
    """A fake pipeline (BatchSteps): no server can place a message between the receive loop and the processor at
    the instant a batch fails; here the failing batch itself leaves its group's next message in the channel."""
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo"

    def message(body: str, group: str, received_at: float | None = None) -> Message:
        raw = {"MessageId": body, "ReceiptHandle": body, "Body": body, "Attributes": {"MessageGroupId": group}}
        return Message(url, raw, visibility_timeout=30, received_at=received_at)

    channel: Channel[Message] = Channel()
    in_transit = message("a3", "a")  # received before a1 fails
    ran: list[list[str]] = []
    released: list[str] = []
    a3_settled = asyncio.Event()  # handed back, or (the fault this test is about) run
    later_batch = asyncio.Event()

    class Steps:
        async def process_batch(self, handler: BatchHandler, batch: list[Message]) -> set[Message]:
            ran.append([m.body for m in batch])
            if len(ran) == 1:
                channel.put_nowait(in_transit)
                return set()  # a1 and a2 failed
            later_batch.set()
            if in_transit in batch:
                a3_settled.set()
            return set(batch)

        def release(self, message: Message, delay_s: int = 0) -> None:
            released.append(message.body)
            if message is in_transit:
                a3_settled.set()

    handler = batch(lambda messages: None, max_messages=2)
    processor = BatchingProcessor(1, lambda message: handler, max_messages=2, fifo=True)
    received = time.monotonic()  # one receive brought a1 and a2
    channel.put_nowait(message("a1", "a", received))
    channel.put_nowait(message("a2", "a", received))
    running = asyncio.create_task(processor.run(channel, Steps()))
    await asyncio.wait_for(a3_settled.wait(), 30)
    assert released == ["a3"]
    channel.put_nowait(message("a1", "a"))  # received after the failure: SQS redelivers the group in its order
    await asyncio.wait_for(later_batch.wait(), 30)
    channel.close()
    await running
    assert ran == [["a1", "a2"], ["a1"]]
    assert released == ["a3"]


async def test_a_drain_finishes_running_batches_and_hands_back_gathered_ones(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(10)])
    running = asyncio.Event()
    finish = asyncio.Event()
    handled: list[str] = []

    async def slow(messages: Sequence[Message]) -> None:
        running.set()
        await finish.wait()
        handled.extend(m.body for m in messages)

    outcomes = Outcomes()
    # One batch at a time: the first takes 5 messages and blocks; the rest are gathered behind it.
    server = Server(
        url,
        batch(slow, max_messages=5, max_wait_s=0.1),
        client=pipeline_sqs,
        concurrency=1,
        wait_time_seconds=0,
        observer=outcomes,
    )
    await server.start()
    await asyncio.wait_for(running.wait(), 30)
    await until(lambda: server.in_flight == 10)
    drain = asyncio.ensure_future(server.drain(30))
    await until(lambda: server.health.draining)
    finish.set()
    summary = await drain
    await server.wait()
    assert len(handled) == 5  # the running batch finished
    assert outcomes.deleted_bodies == set(handled)
    assert summary.released == 5  # the gathered batch was handed back, not run
    leftover = {m["Body"] for m in await drain_queue(sqs, url)}
    assert leftover == {f"m{i}" for i in range(10)} - set(handled)  # visible again at once, none lost


async def test_the_heartbeat_keeps_a_long_batch_invisible(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b", "c"])
    calls: list[list[str]] = []

    async def long_job(messages: Sequence[Message]) -> None:
        calls.append([m.body for m in messages])
        await asyncio.sleep(9)  # the scenario: a batch that outlives its messages' visibility timeout twice

    outcomes = Outcomes()
    server = Server(
        url,
        batch(long_job, max_messages=3, max_wait_s=5),
        client=pipeline_sqs,
        concurrency=2,
        visibility_timeout=4,  # each extension has at least 1.3 s to reach SQS, however busy the host
        deletion_interval_s=0.5,
        wait_time_seconds=0,
        observer=outcomes,
    )
    async with server:
        await until(lambda: outcomes.deleted_bodies == {"a", "b", "c"}, timeout_s=60)
    assert sorted(b for call in calls for b in call) == ["a", "b", "c"]  # no message redelivered meanwhile


async def test_a_router_gathers_each_batch_route_and_runs_single_routes_alone(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    route = {"route": {"DataType": "String", "StringValue": "bulk"}}
    await send_messages(sqs, url, [f"b{i}" for i in range(8)], MessageAttributes=route)
    await send_messages(sqs, url, ["one"], MessageAttributes={"route": {"DataType": "String", "StringValue": "one"}})
    await send_messages(sqs, url, ["lost"], MessageAttributes={"route": {"DataType": "String", "StringValue": "x"}})
    bulk_calls: list[list[str]] = []
    singles: list[str] = []
    router = Router()

    @router.route("bulk")
    @batch(max_messages=8, max_wait_s=10)
    async def bulk(messages: Sequence[Message]) -> None:
        bulk_calls.append([m.body for m in messages])

    @router.route("one")
    async def one(message: Message) -> None:
        singles.append(message.body)

    outcomes = Outcomes()
    server = Server(url, router, client=pipeline_sqs, retry_policy=SLOW_RETRY, observer=outcomes)
    async with server:
        await until(lambda: len(outcomes.deleted_bodies) == 9 and "lost" in outcomes.retries)
    assert [sorted(call) for call in bulk_calls] == [[f"b{i}" for i in range(8)]]
    assert singles == ["one"]
    assert [type(error).__name__ for body, error in outcomes.failed if body == "lost"] == ["RouteError"]


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": 10_001}, "max_messages"),
        ({"max_messages": True}, "max_messages"),
        ({"max_wait_s": -1}, "max_wait_s"),
        ({"max_wait_s": 301}, "max_wait_s"),
    ],
)
def test_batch_options_out_of_range_are_refused_by_name(options: dict[str, object], name: str) -> None:
    async def fn(messages: Sequence[Message]) -> None:
        return None

    with pytest.raises(ConfigError) as refused:
        batch(fn, **options)  # type: ignore[call-overload]
    assert refused.value.name == name


async def test_a_batch_route_called_with_one_message_raises_its_failure() -> None:
    async def fail_all(messages: Sequence[Message]) -> list[Message]:
        return list(messages)

    router = Router()
    router.handle("bulk", batch(fail_all))
    message = Message(
        "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        {"MessageId": "1", "ReceiptHandle": "r", "Body": "b", "MessageAttributes": {"route": _string("bulk")}},
        visibility_timeout=30,
    )
    with pytest.raises(BatchItemFailed):
        await router(message)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


async def test_the_bulk_example_writes_good_rows_and_retries_bad_bodies(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import bulk  # noqa: PLC0415 - the example application under test

    table = bulk.StockTable()
    monkeypatch.setattr(bulk, "table", table)
    url = await make_queue()
    route = {"route": {"DataType": "String", "StringValue": "stock"}}
    rows = [json.dumps({"sku": f"A-{i}", "quantity": i}) for i in range(20)]
    await send_messages(sqs, url, [*rows, "not json", '{"sku": 7}'], MessageAttributes=route)
    outcomes = Outcomes()
    async with Server(url, bulk.router, client=pipeline_sqs, retry_policy=SLOW_RETRY, observer=outcomes):
        await until(lambda: len(outcomes.deleted_bodies) == 20 and len(outcomes.retries) == 2)
    assert sorted((sku, quantity) for _, sku, quantity in table.rows()) == sorted((f"A-{i}", i) for i in range(20))
    assert set(outcomes.retries) == {"not json", '{"sku": 7}'}


async def test_a_batch_rejects_one_message_and_retries_another(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=5)
    await send_messages(sqs, url, ["ok", "poison", "later"])

    async def handle(messages: Sequence[Message]) -> dict[Message, Exception]:
        failures: dict[Message, Exception] = {}
        for message in messages:
            if message.body == "poison":
                try:
                    message.json()
                except InvalidBody as exc:
                    failures[message] = exc
            elif message.body == "later":
                failures[message] = Retry(600)
        return failures

    outcomes = Outcomes()
    server = Server(url, batch(handle, max_messages=3, max_wait_s=5), client=pipeline_sqs, observer=outcomes)
    async with server:
        await until(lambda: outcomes.deleted_bodies == {"ok", "poison"} and "later" in outcomes.retries)
    dead = await drain_queue(sqs, await dead_letter_queue_of(sqs, url))
    assert [m["Body"] for m in dead] == ["poison"]  # in the dead-letter queue on its first receive
    assert dead[0]["MessageAttributes"]["mq_reject_reason"]["StringValue"].startswith("the body is not valid JSON")
    assert server.health.rejected == 1
    assert outcomes.retries == {"later": 600}
