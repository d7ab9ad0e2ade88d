"""Handlers that raise, hang past the visibility timeout, or are cancelled at shutdown: retried, kept, handed back."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service import ExponentialRetryPolicy, Message, Server
from tests.support.sqs import QueueFactory, dead_letter_queue_of, eventually, queue_counts, send_messages, until

from .invariants import Ledger, LedgerObserver, body_for, check, collect_state, id_of, make_ids

if TYPE_CHECKING:
    from collections.abc import Sequence

    from types_aiobotocore_sqs import SQSClient

MAX_RECEIVE_COUNT = 2
VISIBILITY_TIMEOUT_S = 2


class Observer(LedgerObserver):
    """Records deletions, retry delays and heartbeat extensions."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.retries: list[tuple[str, int, int]] = []
        self.extended: Counter[str] = Counter()

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self.retries.append((id_of(message.body), message.receive_count, delay_s))

    def visibility_extended(self, messages: Sequence[Message], timeout_s: int) -> None:
        self.extended.update(id_of(message.body) for message in messages)


@dataclass
class Run:
    """One execution of a handler: when its message was received, when the handler started and ended."""

    message_id: str
    received_at: float
    started_at: float
    ended_at: float = math.inf


class Runs:
    """Every handler execution, to find a message handed to a consumer again while a handler of it ran."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    @asynccontextmanager
    async def run(self, message: Message) -> AsyncIterator[None]:
        """Record the handler's execution of `message` around the block."""
        run = Run(id_of(message.body), message.received_at, time.monotonic())
        self.runs.append(run)
        try:
            yield
        finally:
            run.ended_at = time.monotonic()

    def redelivered_while_running(self, after_s: float) -> list[tuple[Run, Run]]:
        """Pairs (earlier, later) of runs of one message where the later one's message was received while the
        earlier one ran, at least `after_s` after the earlier one's. One delivery given to two receives at once
        (an at-least-once duplicate) is received by both at about the same time; a redelivery only comes once
        the visibility timeout has run out."""
        pairs = []
        for earlier, later in itertools.permutations(self.runs, 2):
            if earlier.message_id != later.message_id or later.received_at < earlier.received_at + after_s:
                continue
            if earlier.started_at <= later.received_at <= earlier.ended_at:
                pairs.append((earlier, later))
        return pairs


async def test_failing_handlers_are_retried_with_backoff_and_poison_ends_in_the_dead_letter_queue(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger
) -> None:
    url = await make_queue(max_receive_count=MAX_RECEIVE_COUNT)
    dlq = await dead_letter_queue_of(sqs, url)
    poison, flaky, fine = make_ids(10, "poison"), make_ids(10, "flaky"), make_ids(10, "fine")
    await send_messages(sqs, url, [body_for(i) for i in poison + flaky + fine])
    attempts: Counter[str] = Counter()

    async def handler(message: Message) -> None:
        message_id = id_of(message.body)
        attempts[message_id] += 1
        if message_id in poison or (message_id in flaky and attempts[message_id] == 1):
            raise RuntimeError(f"failure {attempts[message_id]} of {message_id}")
        ledger.succeeded(message)

    observer = Observer(ledger)
    retry_policy = ExponentialRetryPolicy(base_s=0.5)  # 1 s after the first receive, 2 s after the second
    server = Server(
        url,
        handler,
        client=sqs,
        concurrency=10,
        wait_time_seconds=1,
        deletion_interval_s=0.5,
        retry_policy=retry_policy,
        observer=observer,
    )
    async with server:
        await until(lambda: set(flaky + fine) <= set(ledger.deleted), what="flaky and fine messages deleted")
        await until(lambda: all(attempts[i] >= MAX_RECEIVE_COUNT for i in poison), what="poison retried")
        await eventually(lambda: _counts_are(sqs, dlq, (len(poison), 0)), what="poison dead-lettered")

    report = check(poison + flaky + fine, ledger.successes, await collect_state(sqs, url, dlq), deleted=ledger.deleted)
    print(f"failing handlers: {sum(attempts.values()) - report.handled} failures; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert (report.handled, report.dead_lettered, report.remaining) == (20, 10, 0)
    # Each poison message was tried until its receive count reached the limit (a duplicate delivery, which SQS
    # allows, adds an attempt and a receive), and never succeeded.
    assert all(attempts[i] >= MAX_RECEIVE_COUNT for i in poison)
    assert not set(poison) & set(ledger.successes)
    delays = {(receive_count, delay_s) for message_id, receive_count, delay_s in observer.retries}
    assert {(1, 1), (2, 2)} <= delays, "the retry delay grows with the receive count"
    assert all(delay_s == retry_policy.delay_s(receive_count) for receive_count, delay_s in delays), delays


async def test_a_handler_outliving_the_visibility_timeout_is_kept_invisible_while_it_runs(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger
) -> None:
    url = await make_queue()
    slow, quick = make_ids(5, "slow"), make_ids(10, "quick")
    await send_messages(sqs, url, [body_for(i) for i in slow + quick])
    runs = Runs()

    async def handler(message: Message) -> None:
        async with runs.run(message):
            if id_of(message.body) in slow:
                await asyncio.sleep(2.5 * VISIBILITY_TIMEOUT_S)
        ledger.succeeded(message)

    observer = Observer(ledger)
    server = Server(
        url,
        handler,
        client=sqs,
        concurrency=20,
        wait_time_seconds=1,
        visibility_timeout=VISIBILITY_TIMEOUT_S,
        deletion_interval_s=0.5,
        observer=observer,
    )
    async with server:
        await until(lambda: set(slow + quick) <= set(ledger.deleted), what="every message deleted")
    report = check(slow + quick, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(f"hanging handlers: {observer.extended.total()} heartbeat extensions; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert set(slow) <= set(observer.extended), "the heartbeat extended every slow handler's message"
    # Total handling counts are no measure: SQS (and moto) may hand one message to two receives at once. What the
    # heartbeat promises is that no consumer gets the message again while its handler runs.
    assert runs.redelivered_while_running(VISIBILITY_TIMEOUT_S / 2) == [], "delivered again while its handler ran"


async def test_handlers_cancelled_at_shutdown_hand_their_messages_back_at_once(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger
) -> None:
    url = await make_queue()
    ids = make_ids(20, "stuck")
    await send_messages(sqs, url, [body_for(i) for i in ids])
    started: list[str] = []  # a list: a message delivered to two receives at once would run twice
    never = asyncio.Event()

    async def stuck(message: Message) -> None:
        started.append(id_of(message.body))
        await never.wait()

    # 10 handlers run and 10 more messages wait for one (prefetch) when the shutdown times out.
    server = Server(url, stuck, client=sqs, concurrency=10, wait_time_seconds=1, observer=ledger.observer())
    await server.start()
    await until(lambda: server.in_flight == 20, what="20 messages in flight")
    summary = await server.shutdown(timeout_s=0.5)
    shut_down = time.monotonic()
    # Handed back, they are visible at once; not handed back, they would stay invisible for the 30 s timeout.
    await eventually(lambda: _counts_are(sqs, url, (20, 0)), timeout_s=10.0, what="every message visible again")
    visible_after_s = time.monotonic() - shut_down
    assert (summary.cancelled, summary.released, summary.deleted, summary.timed_out) == (10, 20, 0, True)
    assert len(started) == 10

    async def handler(message: Message) -> None:
        ledger.succeeded(message)

    async with Server(url, handler, client=sqs, concurrency=10, wait_time_seconds=1, observer=ledger.observer()):
        await until(lambda: set(ids) <= set(ledger.deleted), what="every message handled after the restart")
    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(f"cancelled handlers: 10 cancelled, 20 handed back, visible in {visible_after_s:.2f} s; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.handled == 20


async def _counts_are(sqs: SQSClient, url: str, expected: tuple[int, int]) -> bool:
    return await queue_counts(sqs, url) == expected
