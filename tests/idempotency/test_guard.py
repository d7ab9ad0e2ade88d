"""The guard on each real store: once per key, release on failure, in progress elsewhere, a store that fails."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from service import Message, Router, Server, batch
from service.errors import Retry
from service.idempotency import Claim, IdempotencyObserver, InProgress, MissingKey, Store, StoreError, idempotent
from service.idempotency.stores.redis import RedisStore
from tests.support.redis import free_port
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


def received(message_id: str = "", body: str = "b", **attributes: str) -> Message:
    """A received message as SQS returns it (for the guard alone, without a queue)."""
    raw: dict[str, Any] = {
        "MessageId": message_id or str(uuid.uuid4()),
        "ReceiptHandle": "rh",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }
    return Message("http://queue", raw, visibility_timeout=30)


class Seen(IdempotencyObserver):
    """What the guard reported, by hook."""

    def __init__(self) -> None:
        self.hooks: Counter[str] = Counter()

    def completed(self, message: Message, key: str) -> None:
        self.hooks["completed"] += 1

    def skipped(self, message: Message, key: str) -> None:
        self.hooks["skipped"] += 1

    def in_progress(self, message: Message, key: str, delay_s: int) -> None:
        self.hooks["in_progress"] += 1

    def store_failed(self, message: Message, key: str, error: BaseException) -> None:
        self.hooks["store_failed"] += 1

    def unguarded(self, message: Message, reason: str) -> None:
        self.hooks["unguarded"] += 1


async def test_a_message_delivered_twice_runs_its_handler_once(store: Store) -> None:
    calls: list[str] = []
    seen = Seen()

    async def handler(message: Message) -> None:
        calls.append(message.message_id)

    guard = idempotent(handler, store, observer=seen)
    await guard(received("m-1"))
    await guard(received("m-1"))  # the same MessageId again: SQS's duplicate delivery
    await guard(received("m-2"))
    assert calls == ["m-1", "m-2"]
    assert seen.hooks == {"completed": 2, "skipped": 1}
    assert guard.counts["skipped"] == 1


async def test_a_failed_handler_releases_its_claim_so_the_retry_runs(store: Store) -> None:
    attempts: list[str] = []

    async def flaky(message: Message) -> None:
        attempts.append(message.message_id)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")

    guard = idempotent(flaky, store)
    with pytest.raises(ValueError, match="first attempt"):
        await guard(received("m-1"))
    await guard(received("m-1"))
    await guard(received("m-1"))
    assert attempts == ["m-1", "m-1"]


async def test_a_key_held_elsewhere_is_retried_after_a_short_delay_and_never_runs_concurrently(store: Store) -> None:
    running = 0
    most = 0
    started = asyncio.Event()
    finish = asyncio.Event()

    async def slow(message: Message) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.set()
        await finish.wait()
        running -= 1

    seen = Seen()
    guard = idempotent(slow, store, key="body", in_progress_delay_s=3, observer=seen)
    first = asyncio.create_task(guard(received(body="same")))
    await started.wait()
    with pytest.raises(InProgress) as raised:
        await guard(received(body="same"))
    assert isinstance(raised.value, Retry)
    assert raised.value.delay_s == 3
    finish.set()
    await first
    await guard(received(body="same"))  # done now: skipped
    assert most == 1
    assert seen.hooks == {"completed": 1, "in_progress": 1, "skipped": 1}


async def test_the_lease_is_renewed_while_a_long_handler_runs(store: Store) -> None:
    release = asyncio.Event()

    async def long(message: Message) -> None:
        await release.wait()

    guard = idempotent(long, store, key="body", lease_s=2)
    running = asyncio.create_task(guard(received(body="long")))
    # Well past the 2 s lease (renewed every second): the key is still held, not free for a second run.
    for _ in range(4):
        await asyncio.sleep(1)
        assert await store.claim("body:" + _sha("long"), uuid.uuid4().hex, 30) is Claim.IN_PROGRESS
    release.set()
    await running
    assert guard.counts["completed"] == 1


async def test_a_cancelled_handler_releases_its_claim(store: Store) -> None:
    started = asyncio.Event()

    async def hangs(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    guard = idempotent(hangs, store)
    task = asyncio.create_task(guard(received("m-1")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.claim("message_id:m-1", uuid.uuid4().hex, 30) is Claim.CLAIMED


@pytest.mark.parametrize(
    ("key", "same", "other"),
    [
        ("message_id", received("a"), received("b")),
        ("body", received(body="x"), received(body="y")),
        ("attribute:order_id", received(order_id="o-1"), received(order_id="o-2")),
        (lambda m: m.body.split(":")[0], received(body="o-1:first"), received(body="o-2:first")),
    ],
)
async def test_each_kind_of_key_tells_duplicates_apart(store: Store, key: Any, same: Message, other: Message) -> None:
    calls: list[str] = []

    async def handler(message: Message) -> None:
        calls.append(message.message_id)

    guard = idempotent(handler, store, key=key, namespace=uuid.uuid4().hex[:8])
    twin = Message("http://queue", {**same.raw, "MessageId": "twin"}, visibility_timeout=30)
    if key != "message_id":  # same key, another message id: a producer's duplicate
        await guard(same)
        await guard(twin)
    else:
        await guard(same)
        await guard(same)
    await guard(other)
    assert len(calls) == 2


async def test_a_message_without_its_key_runs_unguarded_unless_a_key_is_required(store: Store) -> None:
    calls: list[str] = []

    async def handler(message: Message) -> None:
        calls.append(message.message_id)

    await idempotent(handler, store, key="attribute:order_id")(received("m-1"))
    assert calls == ["m-1"]
    with pytest.raises(MissingKey):
        await idempotent(handler, store, key="deduplication_id", require_key=True)(received("m-2"))
    assert calls == ["m-1"]


async def test_a_store_that_fails_fails_the_message_and_never_runs_it_unguarded() -> None:
    calls: list[str] = []

    async def handler(message: Message) -> None:
        calls.append(message.message_id)

    down = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1)
    seen = Seen()
    guard = idempotent(handler, down, observer=seen)
    for number in range(3):
        with pytest.raises(StoreError):
            await guard(received(f"m-{number}"))
    assert calls == []
    assert guard.counts["store_errors"] == 3
    assert "failed 3 times in a row" in str(guard.problem())
    open_guard = idempotent(handler, down, fail_open=True, observer=seen)
    await open_guard(received("m-open"))
    assert calls == ["m-open"]
    assert seen.hooks == {"store_failed": 4, "unguarded": 1}
    assert open_guard.problem() is None  # fail_open: the service keeps handling, unguarded
    await down.close()


async def test_with_a_server_and_a_router_the_same_body_sent_twice_runs_once(
    store: Store, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    orders: Counter[str] = Counter()
    router = Router()

    async def order(message: Message) -> None:
        orders[message.body] += 1

    # Both copies may arrive in one receive: the second then waits a second (in progress) and is skipped.
    router.handle("orders", idempotent(order, store, key="body", in_progress_delay_s=1))
    await send_messages(
        sqs, url, ["o-1", "o-1", "o-2"], MessageAttributes={"route": {"DataType": "String", "StringValue": "orders"}}
    )
    async with Server(url, router, client=sqs, wait_time_seconds=0, deletion_interval_s=0.2) as server:
        await until(lambda: server.health.deleted >= 3, what="all three messages deleted")
    assert orders == {"o-1": 1, "o-2": 1}
    assert await queue_counts(sqs, url) == (0, 0)


async def test_a_batch_handler_under_the_guard_runs_each_body_once(
    store: Store, sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    rows: Counter[str] = Counter()
    calls: list[int] = []

    async def insert(messages: Sequence[Message]) -> None:
        calls.append(len(messages))
        rows.update(message.body for message in messages)

    def ignored(message: Message) -> None:  # the guard's own handler: its batches run `insert` instead
        raise AssertionError("not called")

    guard = idempotent(ignored, store, key="body", in_progress_delay_s=1)
    handler = guard.guarding_batches(batch(insert, max_messages=10, max_wait_s=1))
    # A copy in the same batch as its twin finds the key in progress: it comes back a second later, is skipped.
    await send_messages(sqs, url, ["r-1", "r-2", "r-1", "r-3", "r-2"])
    async with Server(url, handler, client=sqs, wait_time_seconds=0, deletion_interval_s=0.2) as server:
        await until(lambda: server.health.deleted >= 5, what="all five messages deleted")
    assert rows == {"r-1": 1, "r-2": 1, "r-3": 1}
    assert guard.counts["completed"] == 3
    assert guard.counts["skipped"] + guard.counts["in_progress"] >= 2
    assert await queue_counts(sqs, url) == (0, 0)


async def test_with_a_server_a_store_that_is_down_leaves_every_message_in_the_queue(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    calls: list[str] = []

    async def handler(message: Message) -> None:
        calls.append(message.body)

    down = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1)
    guard = idempotent(handler, down)
    await send_messages(sqs, url, ["a", "b"])
    async with Server(url, guard, client=sqs, wait_time_seconds=0) as server:
        await until(lambda: server.health.failed >= 2, what="both messages failed")
    assert calls == []
    assert server.health.deleted == 0

    async def both_back() -> bool:
        visible, invisible = await queue_counts(sqs, url)
        return visible + invisible == 2

    await eventually(both_back, what="both messages still in the queue")
    await down.close()


def _sha(text: str) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(text.encode()).hexdigest()
