"""Graceful drain and SIGTERM under load (hundreds of messages, concurrency 50): nothing lost, the rest visible."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

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
# Messages not started when the service stops must be visible again within this, not after their visibility timeout:
# they were handed back, so this only waits for the SQS server's bookkeeping. Below VISIBILITY_TIMEOUT_S, so that a
# message left to its timeout still fails the check, with room for a busy machine.
VISIBLE_AGAIN_WITHIN_S = VISIBILITY_TIMEOUT_S - 1.0


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
    # The service has stopped: the receive calls in flight at the drain have returned, what they brought is back.
    stopped = time.monotonic()
    unhandled = len(ids) - len(ledger.successes)
    await _visible_again(sqs, url, unhandled)
    visible_after_s = time.monotonic() - stopped

    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(
        f"drain: {in_flight_at_drain} in flight, summary {summary}, rest visible {visible_after_s:.2f} s after the "
        f"stop; {report.summary()}"
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
        await _visible_again(sqs, url, unhandled)
        visible_after_s = time.monotonic() - exited

    report = check(ids, read_records(record_file), await collect_state(sqs, url))
    print(f"sigterm: {unhandled} unhandled visible in {visible_after_s:.2f} s after exit; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.remaining == unhandled > 0


async def _visible_again(sqs: SQSClient, url: str, unhandled: int) -> None:
    """Every unhandled message is visible again well before its visibility timeout: none was left in flight."""
    await eventually(
        lambda: _counts_are(sqs, url, (unhandled, 0)),
        timeout_s=VISIBLE_AGAIN_WITHIN_S,
        what=f"all {unhandled} unhandled messages visible again",
    )


async def _counts_are(sqs: SQSClient, url: str, expected: tuple[int, int]) -> bool:
    return await queue_counts(sqs, url) == expected


async def _has_records(record_file: Path, count: int) -> bool:
    return len(read_records(record_file)) >= count


async def test_messages_of_a_receive_answered_during_the_drain_are_handed_back_at_once(
    sqs: SQSClient, make_queue: QueueFactory, proxied_sqs: SQSClient, through_proxy: FaultProxy
) -> None:
    url = await make_queue()
    ids = make_ids(20, "answered")
    await send_messages(sqs, url, [body_for(i) for i in ids])
    # SQS answers every receive at once (its messages become invisible), the answer reaches us 3 s later: after
    # the drain's handler deadline (1 s) and the long poll's wait time, within the allowance for an answer on its
    # way (RECEIVE_ANSWER_MARGIN_S): the drain waits for it and hands its messages back.
    through_proxy.add("slow_response", operations=["ReceiveMessage"], latency_s=3.0)
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


async def test_a_drain_on_an_idle_queue_strands_no_message_published_during_it(
    sqs: SQSClient, make_queue: QueueFactory, tmp_path: Path
) -> None:
    url = await make_queue()
    # Six long polls of 5 s (concurrency 50) are open on the idle queue when the drain begins: SQS may hand them
    # what is sent meanwhile, and each must come back to the service to be handed back.
    env = service_env(url, tmp_path / "handled.txt", MQ_WAIT_TIME_SECONDS="5", MQ_CONCURRENCY="50")
    async with service_process(env, tmp_path / "service.log") as service:
        await eventually(lambda: _ready(service.client), what="ready")
        drain = asyncio.create_task(service.client.post("/drain"))
        ids = make_ids(5, "during-drain")
        for message_id in ids:  # sent during the drain and right after it, over 1.5 s
            await send_messages(sqs, url, [body_for(message_id)])
            await asyncio.sleep(0.3)
        assert (await drain).status_code == 200
        service.process.send_signal(signal.SIGTERM)
        assert await service.exit_code(30) == 0
    handled = read_records(tmp_path / "handled.txt")
    assert not handled  # nothing is started once the drain has begun
    # Nothing is left in flight: each message is visible at once, not after its 30 s visibility timeout.
    await eventually(lambda: _counts_are(sqs, url, (len(ids), 0)), timeout_s=VISIBLE_AGAIN_WITHIN_S, what="all visible")


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
