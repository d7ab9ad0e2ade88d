"""Graceful drain and SIGTERM under load (hundreds of messages, concurrency 50): nothing lost, the rest visible."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from service import Message, Server
from service.app.config import Settings
from service.telemetry.hooks import Hooks
from tests.support.reliability import read_records, running_service, service_env, service_process
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages, until

from .fault_proxy import FaultProxy
from .invariants import Ledger, body_for, check, collect_state, id_of, make_ids

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

CONCURRENCY = 50
VISIBILITY_TIMEOUT_S = 5
# Messages not started when the drain returns must be visible again within this, not after their visibility timeout:
# the hand-back is done before the drain returns, so this only waits for the SQS server's bookkeeping. Below
# VISIBILITY_TIMEOUT_S, so that a message left to its timeout still fails the check, with room for a busy machine.
VISIBLE_AGAIN_WITHIN_S = VISIBILITY_TIMEOUT_S - 1.0
# Messages of receive calls whose answer comes back later than the drain's receive grace stay invisible until their
# visibility timeout (see the xfail test at the end); the pipeline's credits (capacity + prefetch of 10) bound them.
ABANDONED_RECEIVE_ALLOWANCE = CONCURRENCY + 10


def sleep_s(index: int) -> float:
    """Handler time of message `index`: 0.2 to 0.6 s, staggered."""
    return 0.2 + (index % 5) * 0.1


async def test_drain_under_load_loses_nothing_and_hands_back_the_rest(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger
) -> None:
    url = await make_queue()
    ids = make_ids(250, "drain")
    await send_messages(sqs, url, [body_for(m, sleep_s=sleep_s(n)) for n, m in enumerate(ids)])
    delays = {m: sleep_s(n) for n, m in enumerate(ids)}

    async def handler(message: Message) -> None:
        await asyncio.sleep(delays[id_of(message.body)])
        ledger.succeeded(message)

    settings = Settings(
        queue_url=url,
        admin_port=0,
        concurrency=CONCURRENCY,
        wait_time_seconds=1,
        visibility_timeout=VISIBILITY_TIMEOUT_S,
        deletion_interval_s=1,
        drain_timeout_s=10,
    )
    async with running_service(settings, handler, hooks=Hooks(observer=ledger.observer())) as service:
        server = service.runtime.server
        await until(lambda: len(ledger.successes) >= 60 and server.in_flight >= CONCURRENCY, what="a loaded pipeline")
        in_flight_at_drain = server.in_flight
        summary = (await service.client.post("/drain")).json()["server"]
        drained = time.monotonic()
        unhandled = len(ids) - len(ledger.successes)
        abandoned = await _visible_again(sqs, url, unhandled)
        visible_after_s = time.monotonic() - drained

    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(
        f"drain: {in_flight_at_drain} in flight, summary {summary}, rest visible in {visible_after_s:.2f} s "
        f"but {abandoned} of an abandoned receive; {report.summary()}"
    )
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert summary["timed_out"] is False
    # Every handler success was deleted. (A standard queue may deliver a message twice: handled twice is allowed.)
    assert summary["deleted"] == summary["handled"] == report.handler_successes
    assert report.remaining == unhandled


async def test_sigterm_under_load_loses_nothing_and_hands_back_the_rest(
    sqs: SQSClient, make_queue: QueueFactory, tmp_path: Path
) -> None:
    url = await make_queue()
    ids = make_ids(200, "sigterm")
    await send_messages(sqs, url, [body_for(m, sleep_s=sleep_s(n)) for n, m in enumerate(ids)])
    record_file = tmp_path / "handled.txt"
    env = service_env(
        url,
        record_file,
        MQ_CONCURRENCY=str(CONCURRENCY),
        MQ_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S),
        MQ_DELETION_INTERVAL_S="1",
        MQ_DRAIN_TIMEOUT_S="10",
    )
    async with service_process(env, tmp_path / "service.log") as service:
        await eventually(lambda: _has_records(record_file, 60), timeout_s=30, what="60 messages handled")
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(30) == 0
        exited = time.monotonic()
        unhandled = len(ids) - len(read_records(record_file))
        abandoned = await _visible_again(sqs, url, unhandled)
        visible_after_s = time.monotonic() - exited

    report = check(ids, read_records(record_file), await collect_state(sqs, url))
    print(
        f"sigterm: {unhandled} unhandled visible in {visible_after_s:.2f} s after exit "
        f"but {abandoned} of an abandoned receive; {report.summary()}"
    )
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.remaining == unhandled > 0


async def _visible_again(sqs: SQSClient, url: str, unhandled: int) -> int:
    """Wait until every unhandled message is visible, but those of abandoned receives; returns how many those are."""
    deadline = time.monotonic() + VISIBLE_AGAIN_WITHIN_S
    while True:
        visible, invisible = await queue_counts(sqs, url)
        if visible + invisible == unhandled and invisible <= ABANDONED_RECEIVE_ALLOWANCE:
            return invisible
        assert time.monotonic() < deadline, f"{unhandled} unhandled, ({visible}, {invisible}) visible and not"
        await asyncio.sleep(0.05)


async def _counts_are(sqs: SQSClient, url: str, expected: tuple[int, int]) -> bool:
    return await queue_counts(sqs, url) == expected


async def _has_records(record_file: Path, count: int) -> bool:
    return len(read_records(record_file)) >= count


@pytest.mark.xfail(
    strict=True,
    reason="a drain gives receive calls in flight RECEIVE_GRACE_S (0.5 s) to bring their answer in; an answer "
    "slower than that is abandoned, and its messages stay invisible until their visibility timeout",
)
async def test_messages_of_a_receive_answered_during_the_drain_are_handed_back_at_once(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    url = await make_queue()
    ids = make_ids(20, "answered")
    await send_messages(sqs, url, [body_for(i) for i in ids])
    # SQS answers every receive at once (its messages become invisible), the answer reaches us 6 s later: long
    # after the drain's grace for receive calls, however slowly the drain gets there.
    through_proxy.add("slow_response", operations=["ReceiveMessage"], latency_s=6.0)
    started: list[str] = []

    async def handler(message: Message) -> None:
        started.append(message.body)

    server = Server(url, handler, client=proxied_sqs, concurrency=5, wait_time_seconds=1, visibility_timeout=30)
    await server.start()
    await until(lambda: through_proxy.answered["ReceiveMessage"] >= 1, what="a receive answered by SQS")
    summary = await server.shutdown(timeout_s=1)
    assert (summary.handled, started) == (0, [])
    await eventually(
        lambda: _counts_are(sqs, url, (len(ids), 0)),
        timeout_s=VISIBLE_AGAIN_WITHIN_S,
        what="every message visible again",
    )
