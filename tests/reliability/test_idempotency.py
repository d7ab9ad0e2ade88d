"""The scenarios that deliver messages twice, with the idempotency guard on: each handler runs once, none lost.

Run against each store (Redis, DynamoDB) in this event loop, and against Redis with the service as a process.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from service import Message, Server
from service.idempotency import Store, idempotent
from tests.support.reliability import read_records, service_env, service_process
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages, until

from .fault_proxy import FaultProxy
from .invariants import Ledger, body_for, check, collect_state, id_of, make_ids

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DELETE = ["DeleteMessageBatch"]
DELETE_OUTAGE_S = 6.0


async def test_lost_delete_answers_and_a_delete_outage_run_each_handler_once(
    sqs: SQSClient,
    make_queue: QueueFactory,
    proxied_sqs: SQSClient,
    through_proxy: FaultProxy,
    store: Store,
) -> None:
    ledger = Ledger()
    url = await make_queue()
    ids = make_ids(40, "guarded-delete")
    await send_messages(sqs, url, [body_for(i) for i in ids])
    through_proxy.add("error500", operations=DELETE, window_s=DELETE_OUTAGE_S)
    through_proxy.add("lose_response", operations=DELETE, calls=2)
    guard = idempotent(ledger.succeeded_async, store, in_progress_delay_s=1)
    server = Server(
        url,
        guard,
        client=proxied_sqs,
        concurrency=10,
        wait_time_seconds=1,
        visibility_timeout=2,
        deletion_interval_s=0.5,
        observer=ledger.observer(),
    )
    async with server:
        await until(lambda: set(ids) <= set(ledger.successes), timeout_s=60, what="every message handled")
        # A delete whose answer was lost did delete (its retry may then be refused): the queue's emptiness, not the
        # deletions reported, says that every delivery that came back was skipped and deleted.
        await eventually(lambda: _empty(sqs, url), timeout_s=90, what="the queue empty")
    report = check(ids, ledger.successes, await collect_state(sqs, url))
    print(f"guarded delete faults: {dict(through_proxy.faults)}; {guard.counts}; {report.summary()}")
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.duplicates == 0, report.summary()
    assert set(ledger.successes.values()) == {1}
    # The deliveries that came back after the outage were skipped, not run again.
    assert guard.counts["skipped"] >= 1, guard.counts


async def test_a_slow_handler_outliving_its_visibility_runs_once(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger, store: Store
) -> None:
    url = await make_queue()
    ids = make_ids(6, "guarded-slow")
    await send_messages(sqs, url, [body_for(i) for i in ids])
    running: Counter[str] = Counter()
    most = 0

    async def slow(message: Message) -> None:
        nonlocal most
        running[message.body] += 1
        most = max(most, running[message.body])
        await asyncio.sleep(5)  # 2.5 visibility timeouts, and no heartbeat: SQS delivers it again meanwhile
        running[message.body] -= 1
        ledger.succeeded(message)

    # No lease margin: the 2 s lease lasts only as long as the first visibility, and is renewed while it runs.
    guard = idempotent(slow, store, lease_margin_s=0, in_progress_delay_s=1)
    server = Server(
        url,
        guard,
        client=sqs,
        concurrency=20,
        wait_time_seconds=1,
        visibility_timeout=2,
        visibility_heartbeat=False,
        deletion_interval_s=0.2,
        observer=ledger.observer(),
    )
    async with server:
        await until(lambda: set(ids) <= set(ledger.deleted), timeout_s=60, what="every message deleted")
        await eventually(lambda: _empty(sqs, url), timeout_s=60, what="the redeliveries skipped and deleted")
    report = check(ids, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(f"guarded slow handlers: {guard.counts}; {report.summary()}")
    assert most == 1, "a key ran twice at the same time"
    assert report.lost == 0, report.summary()
    assert report.duplicates == 0, report.summary()
    assert guard.counts["in_progress"] >= 1, "SQS should have delivered some messages again while they ran"


async def test_two_consumers_receiving_one_body_at_once_never_run_it_concurrently(
    sqs: SQSClient, make_queue: QueueFactory, ledger: Ledger, store: Store
) -> None:
    url = await make_queue()
    ids = make_ids(10, "guarded-twins")
    bodies = [body_for(i) for i in ids]
    await send_messages(sqs, url, bodies * 3)  # each body three times: a producer's duplicates
    running: Counter[str] = Counter()
    most = 0

    async def handler(message: Message) -> None:
        nonlocal most
        running[message.body] += 1
        most = max(most, running[message.body])
        await asyncio.sleep(0.5)
        running[message.body] -= 1
        ledger.succeeded(message)

    guard = idempotent(handler, store, key="body", in_progress_delay_s=1)
    consumers = [
        Server(url, guard, client=sqs, concurrency=10, wait_time_seconds=1, deletion_interval_s=0.2) for _ in range(2)
    ]
    async with consumers[0], consumers[1]:
        await eventually(lambda: _empty(sqs, url), timeout_s=60, what="all 30 messages deleted")
    report = check(ids, ledger.successes, await collect_state(sqs, url))
    print(f"two consumers, each body sent 3 times: {guard.counts}; {report.summary()}")
    assert most == 1, "one body ran twice at the same time"
    assert report.lost == 0, report.summary()
    assert dict(ledger.successes) == dict.fromkeys(ids, 1)
    assert guard.counts["skipped"] + guard.counts["completed"] >= 30


async def test_sigkill_mid_batch_then_restart_runs_each_handler_once(
    sqs: SQSClient, make_queue: QueueFactory, tmp_path: Path, redis_url: str
) -> None:
    url = await make_queue()
    ids = make_ids(100, "guarded-kill")
    message_ids = await _send(sqs, url, [body_for(m, sleep_s=0.1 + (n % 7) * 0.05) for n, m in enumerate(ids)])
    record_file = tmp_path / "handled.txt"
    env = service_env(
        url,
        record_file,
        MQ_CONCURRENCY="10",
        MQ_VISIBILITY_TIMEOUT="2",
        MQ_DELETION_INTERVAL_S="1",  # handled messages wait for their delete: the kill catches some
        MQ_IDEMPOTENCY_STORE=redis_url,
    )
    async with service_process(env, tmp_path / "first.log") as first:
        await eventually(lambda: _has_records(record_file, 35), timeout_s=60, what="35 handled before the kill")
        first.process.send_signal(signal.SIGKILL)
        assert await first.exit_code(10) == -signal.SIGKILL
    handled_before = read_records(record_file)
    # What the store says at the kill: a handler that had returned but whose key was not yet recorded as
    # completed (a window of one store call) is, by design, run again; the test names those.
    states = await _states(redis_url, url, message_ids)
    completed_at_kill = {i for i, state in states.items() if state == "completed"}
    restarted = time.monotonic()
    async with service_process(env, tmp_path / "second.log") as second:
        await eventually(
            lambda: _all_done(sqs, url, record_file, ids), timeout_s=90, what="every message handled after restart"
        )
        done_after_s = time.monotonic() - restarted
        status = await second.status()
        second.process.send_signal(signal.SIGTERM)
        assert await second.exit_code(20) == 0
    records = read_records(record_file)
    report = check(ids, records, await collect_state(sqs, url))
    in_window = {i for i, count in records.items() if count > 1} - completed_at_kill
    print(
        f"guarded sigkill: killed after {len(handled_before)} handled, {len(completed_at_kill)} completed in the "
        f"store; all handled {done_after_s:.1f} s after the restart; skipped {status['idempotency']['skipped']}, "
        f"in progress {status['idempotency']['in_progress']}; {len(in_window)} in the completion window; "
        f"{report.summary()}"
    )
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.handled == len(ids)
    # No message whose key was completed ran again; only a handler caught between its return and its record may.
    assert not {i for i, count in records.items() if count > 1} & completed_at_kill
    assert len(in_window) <= 1, in_window
    assert status["idempotency"]["skipped"] >= 1, "the killed process's handled, undeleted messages came back"


async def _send(sqs: SQSClient, url: str, bodies: list[str]) -> dict[str, str]:
    """Send `bodies`; the body id of each SQS MessageId."""
    sent: dict[str, str] = {}
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)]
        answer = await sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
        assert not answer.get("Failed"), answer
        sent.update((ok["MessageId"], id_of(chunk[int(ok["Id"])])) for ok in answer["Successful"])
    return sent


async def _states(redis_url: str, queue_url: str, message_ids: dict[str, str]) -> dict[str, str]:
    """The body id -> record state (completed, in_progress) in the service's Redis store."""
    namespace = queue_url.rstrip("/").rsplit("/", 1)[-1]
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        states: dict[str, str] = {}
        for message_id, body_id in message_ids.items():
            value = await client.get(f"mq-idempotency:{namespace}:message_id:{message_id}")
            if value is not None:
                states[body_id] = str(value).split(":", 1)[0]
        return states
    finally:
        await client.aclose()


async def _has_records(record_file: Path, count: int) -> bool:
    return len(read_records(record_file)) >= count


async def _all_done(sqs: SQSClient, url: str, record_file: Path, ids: list[str]) -> bool:
    return set(ids) <= set(read_records(record_file)) and await queue_counts(sqs, url) == (0, 0)


async def _empty(sqs: SQSClient, url: str) -> bool:
    return await queue_counts(sqs, url) == (0, 0)
