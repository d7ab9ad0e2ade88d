"""The Server pipeline against a real SQS server: batching, backpressure, failures, heartbeat, shutdown."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from service import ConfigError, ExponentialRetryPolicy, Message, PipelineObserver, Retry, Server
from tests.support.sqs import (
    CallCounter,
    QueueFactory,
    dead_letter_queue_of,
    drain_queue,
    eventually,
    queue_counts,
    send_messages,
    until,
)

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class Recorder(PipelineObserver):
    """Keeps what the pipeline reports, with events to await."""

    def __init__(self) -> None:
        self.retries: list[tuple[str, int, int]] = []
        self.extended: list[str] = []
        self.deleted_ids: list[str] = []
        self.changed = asyncio.Event()

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self.retries.append((message.message_id, message.receive_count, delay_s))
        self.changed.set()

    def visibility_extended(self, messages: object, timeout_s: int) -> None:
        self.extended.extend(m.message_id for m in messages)  # type: ignore[attr-defined]
        self.changed.set()

    def deleted(self, messages: object) -> None:
        self.deleted_ids.extend(m.message_id for m in messages)  # type: ignore[attr-defined]
        self.changed.set()


async def test_a_full_queue_costs_a_tenth_of_receives_and_deletes(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, calls: CallCounter
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(50)])
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.body)

    batches = BatchSizes()
    server = Server(
        url, handler, client=pipeline_sqs, concurrency=10, deletion_interval_s=5, wait_time_seconds=0, observer=batches
    )
    calls.clear()
    async with server:
        await until(lambda: server.health.deleted >= 50)
    # SQS delivers at least once (moto, too, may hand one message to two concurrent receives): every
    # message was handled, a duplicate at most adds a handling.
    assert set(seen) == {f"m{i}" for i in range(50)}
    # Full batches: a delete call per 10 handled messages (the last partial one flushed at shutdown), and
    # receives that returned messages brought about 10 each.
    assert calls["DeleteMessageBatch"] == math.ceil(len(seen) / 10)
    assert server.health.received == len(seen)
    # Only the last receives, as the queue runs empty, may bring fewer than 10.
    assert len(batches.sizes) <= math.ceil(len(seen) / 10) + 2, batches.sizes
    assert await queue_counts(sqs, url) == (0, 0)


class BatchSizes(PipelineObserver):
    """The size of every receive that returned messages."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        if messages:
            self.sizes.append(len(messages))


async def test_no_receive_while_the_processors_are_saturated(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory, calls: CallCounter
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(20)])
    release = asyncio.Event()
    started: list[str] = []

    async def handler(message: Message) -> None:
        started.append(message.body)
        await release.wait()

    server = Server(url, handler, client=pipeline_sqs, concurrency=3, prefetch=2, wait_time_seconds=0)
    await server.start()
    await until(lambda: len(started) == 3)
    receives = calls["ReceiveMessage"]
    # Saturated: 3 running + 2 waiting; nothing more may be fetched, however long we watch.
    await asyncio.sleep(1.0)
    assert calls["ReceiveMessage"] == receives
    assert server.in_flight == 5
    assert (await queue_counts(sqs, url))[0] == 15
    release.set()
    await until(lambda: server.health.handled == 20)
    await server.shutdown(5)
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_failed_message_is_never_deleted(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["bad"])

    async def handler(message: Message) -> None:
        raise RuntimeError("boom")

    errors: list[Exception] = []
    server = Server(
        url, handler, client=pipeline_sqs, retry_policy=None, error_handler=errors.append, wait_time_seconds=0
    )
    async with server:
        await until(lambda: server.health.failed == 1)
    assert server.health.deleted == 0
    assert "boom" in str(errors[0])
    assert await queue_counts(sqs, url) == (0, 1)  # still there, invisible until its timeout


async def test_retry_delays_grow_with_the_receive_count(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["again"])
    received_at: list[float] = []

    async def handler(message: Message) -> None:
        received_at.append(time.monotonic())
        raise RuntimeError("not yet")

    recorder = Recorder()
    policy = ExponentialRetryPolicy(base_s=0.5)  # 1 s, 2 s, 4 s...
    server = Server(
        url, handler, client=pipeline_sqs, retry_policy=policy, observer=recorder, error_handler=lambda e: None
    )
    async with server:
        await until(lambda: len(received_at) == 3)
    assert [(count, delay) for _, count, delay in recorder.retries[:3]] == [(1, 1), (2, 2), (3, 4)]
    # SQS kept the message invisible for each delay. (How much later than that it came back depends on the
    # long poll and the machine's load, so the gaps themselves are not compared.)
    first_gap, second_gap = received_at[1] - received_at[0], received_at[2] - received_at[1]
    assert first_gap >= 0.9
    assert second_gap >= 1.9


async def test_a_handler_chooses_its_delay_with_retry(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["later"])
    recorder = Recorder()

    async def handler(message: Message) -> None:
        raise Retry(120)

    async with Server(url, handler, client=pipeline_sqs, observer=recorder, error_handler=lambda e: None):
        await until(lambda: bool(recorder.retries))
    assert recorder.retries[0][2] == 120
    assert await drain_queue(sqs, url) == []  # invisible for two minutes


async def test_a_failing_message_reaches_its_dead_letter_queue(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=2)
    await send_messages(sqs, url, ["poison"])
    attempts: list[int] = []

    async def handler(message: Message) -> None:
        attempts.append(message.receive_count)
        raise Retry(0)

    server = Server(url, handler, client=pipeline_sqs, error_handler=lambda e: None, wait_time_seconds=1)
    dlq = await dead_letter_queue_of(sqs, url)
    moved: list[dict[str, object]] = []
    async with server:
        await until(lambda: len(attempts) >= 2)
        deadline = time.monotonic() + 20
        while not moved and time.monotonic() < deadline:
            moved.extend(await drain_queue(sqs, dlq, wait_s=1))
    assert attempts == [1, 2]
    assert [m["Body"] for m in moved] == ["poison"]
    assert server.health.deleted == 0


async def test_the_heartbeat_keeps_a_long_handler_invisible(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["long"])
    running, finish = asyncio.Event(), asyncio.Event()
    recorder = Recorder()

    async def handler(message: Message) -> None:
        running.set()
        await finish.wait()

    # A 4 s timeout leaves each extension at least 1.3 s to reach SQS, however busy the host.
    server = Server(url, handler, client=pipeline_sqs, visibility_timeout=4, deletion_interval_s=0.5, observer=recorder)
    async with server:
        await running.wait()
        # Another consumer polls for 9 s: more than twice the visibility timeout.
        stolen = []
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            stolen.extend(await drain_queue(sqs, url, wait_s=1))
        finish.set()
        await until(lambda: server.health.deleted == 1)
    assert stolen == []
    assert len(recorder.extended) >= 2


async def test_without_heartbeat_a_long_handler_is_redelivered(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    """The control for the heartbeat test: without it, another consumer gets the long handler's message."""
    url = await make_queue()
    await send_messages(sqs, url, ["long"])
    running, finish = asyncio.Event(), asyncio.Event()

    async def handler(message: Message) -> None:
        running.set()
        await finish.wait()

    server = Server(
        url, handler, client=pipeline_sqs, visibility_timeout=2, deletion_interval_s=0.5, visibility_heartbeat=False
    )
    stolen: list[dict[str, object]] = []

    async def another_consumer_got_it() -> bool:
        stolen.extend(await drain_queue(sqs, url, wait_s=1))
        return bool(stolen)

    async with server:
        await running.wait()
        await eventually(another_consumer_got_it, what="the message delivered to another consumer")
        finish.set()
    assert [m["Body"] for m in stolen] == ["long"]


async def test_shutdown_hands_back_what_was_not_handled(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(6)])
    running = asyncio.Event()
    cancelled: list[str] = []

    async def handler(message: Message) -> None:
        running.set()
        try:
            await asyncio.Event().wait()  # never finishes by itself
        except asyncio.CancelledError:
            cancelled.append(message.body)
            raise

    server = Server(url, handler, client=pipeline_sqs, concurrency=1, prefetch=5, wait_time_seconds=0)
    await server.start()
    await running.wait()
    await until(lambda: server.in_flight == 6)
    began = time.monotonic()
    summary = await server.shutdown(timeout_s=0.5)
    assert time.monotonic() - began < 5
    assert (summary.handled, summary.deleted, summary.released, summary.cancelled) == (0, 0, 6, 1)
    assert summary.timed_out
    assert len(cancelled) == 1
    assert not server.alive
    # Visible again at once, for another consumer.
    assert sorted(m["Body"] for m in await drain_queue(sqs, url)) == [f"m{i}" for i in range(6)]


async def test_shutdown_lets_running_handlers_finish(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["a", "b"])
    running, finish = asyncio.Event(), asyncio.Event()

    async def handler(message: Message) -> None:
        running.set()
        await finish.wait()

    server = Server(url, handler, client=pipeline_sqs, concurrency=2, wait_time_seconds=0)
    await server.start()
    await until(lambda: server.health.received == 2)
    await running.wait()
    stopping = asyncio.create_task(server.shutdown(timeout_s=20))
    await until(lambda: server.health.draining)
    finish.set()
    summary = await stopping
    assert (summary.handled, summary.deleted, summary.cancelled, summary.timed_out) == (2, 2, 0, False)
    assert await queue_counts(sqs, url) == (0, 0)


async def test_shutdown_is_idempotent_and_concurrent_calls_share_it(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()

    async def handler(message: Message) -> None:
        return None

    server = Server(url, handler, client=pipeline_sqs, wait_time_seconds=20)
    await server.start()
    await until(lambda: server.health.last_receive_attempt_at is not None or server.health.receiving)
    began = time.monotonic()
    first, second = await asyncio.gather(server.shutdown(5), server.shutdown(5))
    third = await server.shutdown(5)
    # The 20 s long poll in flight was abandoned, not waited out.
    assert time.monotonic() - began < 5
    assert first == second == third
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()


async def test_a_sync_handler_runs_in_a_worker_thread(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["sync"])
    threads: list[int] = []

    def handler(message: Message) -> None:
        threads.append(threading.get_ident())

    server = Server(url, handler, client=pipeline_sqs, deletion_interval_s=0.2, wait_time_seconds=0)
    async with server:
        await until(lambda: server.health.deleted == 1)
    assert threads
    assert threads[0] != threading.get_ident()


async def test_message_fields_come_from_sqs(pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    attributes = {
        "route": {"DataType": "String", "StringValue": "jobs"},
        "partition_key": {"DataType": "String", "StringValue": "user-1"},
    }
    await send_messages(sqs, url, ["payload"], MessageAttributes=attributes)
    got: list[Message] = []

    async def handler(message: Message) -> None:
        got.append(message)

    server = Server(url, handler, client=pipeline_sqs, deletion_interval_s=0.2, wait_time_seconds=0)
    async with server:
        await until(lambda: server.health.deleted == 1)
    message = got[0]
    assert (message.body, message.route, message.partition_key, message.receive_count) == (
        "payload",
        "jobs",
        "user-1",
        1,
    )
    assert message.queue_url == url
    assert "SentTimestamp" in message.attributes
    assert "ApproximateFirstReceiveTimestamp" in message.attributes
    assert message.raw["MessageId"] == message.message_id


async def test_change_visibility_from_a_handler(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["visible-again"])
    changed, finish = asyncio.Event(), asyncio.Event()

    async def handler(message: Message) -> None:
        await message.change_visibility(0)
        changed.set()
        await finish.wait()

    # prefetch 0: while the handler runs, the Server itself fetches nothing, so the test's consumer can.
    server = Server(url, handler, client=pipeline_sqs, visibility_heartbeat=False, prefetch=0, wait_time_seconds=0)
    await server.start()
    await changed.wait()
    stolen = await drain_queue(sqs, url)
    finish.set()
    await server.shutdown(5)
    assert [m["Body"] for m in stolen] == ["visible-again"]


async def test_receive_errors_back_off_and_say_what_is_wrong(sqs_endpoint: str) -> None:
    missing = f"{sqs_endpoint}/123456789012/no-such-queue"

    async def handler(message: Message) -> None:
        return None

    server = Server(missing, handler, wait_time_seconds=0)
    async with server:
        await until(lambda: server.health.consecutive_receive_errors >= 2)
        errors_after_wait = server.health.consecutive_receive_errors
        await asyncio.sleep(1.0)
    # Backing off (0.5 s, 1 s, 2 s...), not a hot loop.
    assert server.health.consecutive_receive_errors <= errors_after_wait + 2
    assert "does not exist" in (server.health.last_receive_error or "")
    assert server.health.last_receive_ok_at is None


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("concurrency", 0, "concurrency"),
        ("max_number_of_messages", 11, "max_number_of_messages"),
        ("wait_time_seconds", 21, "wait_time_seconds"),
        ("visibility_timeout", 43201, "visibility_timeout"),
        ("batch_delete_max_messages", 0, "batch_delete_max_messages"),
        ("deletion_interval_s", 30, "deletion_interval_s"),
        ("deletion_interval_s", 0, "deletion_interval_s"),
        ("prefetch", -1, "prefetch"),
        ("processor", "fastest", "processor"),
        ("max_messages_per_s", 0, "max_messages_per_s"),
        ("attribute_names", "SentTimestamp", "attribute_names"),
    ],
)
def test_bad_configuration_is_refused(option: str, value: object, message: str) -> None:
    async def handler(message: Message) -> None:
        return None

    with pytest.raises(ConfigError, match=message):
        Server("http://127.0.0.1:1/q", handler, **{option: value})  # type: ignore[arg-type]


async def test_a_second_shutdown_with_a_shorter_timeout_hurries_the_first(
    pipeline_sqs: SQSClient, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["stuck"])
    running = asyncio.Event()

    async def handler(message: Message) -> None:
        running.set()
        await asyncio.Event().wait()

    server = Server(url, handler, client=pipeline_sqs, wait_time_seconds=0)
    await server.start()
    await running.wait()
    patient = asyncio.create_task(server.shutdown(timeout_s=60))
    await until(lambda: server.health.draining)
    began = time.monotonic()
    hurried = await server.shutdown(timeout_s=0)
    assert time.monotonic() - began < 5
    assert await patient == hurried
    assert (hurried.cancelled, hurried.released, hurried.timed_out) == (1, 1, True)
    assert [m["Body"] for m in await drain_queue(sqs, url)] == ["stuck"]
