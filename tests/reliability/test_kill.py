"""The service process killed with SIGKILL mid-batch, then restarted: every message is handled after all."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.reliability import read_records, service_env, service_process
from tests.support.sqs import QueueFactory, eventually, queue_counts, send_messages

from .invariants import body_for, check, collect_state, make_ids

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

MESSAGES = 100
VISIBILITY_TIMEOUT_S = 2


async def test_sigkill_mid_batch_then_restart_handles_every_message(
    sqs: SQSClient, make_queue: QueueFactory, tmp_path: Path
) -> None:
    url = await make_queue()
    ids = make_ids(MESSAGES, "kill")
    # Staggered handler times: at any moment some handled messages wait for a delete batch to fill.
    await send_messages(sqs, url, [body_for(m, sleep_s=0.1 + (n % 7) * 0.05) for n, m in enumerate(ids)])
    record_file = tmp_path / "handled.txt"
    env = service_env(
        url,
        record_file,
        MQ_CONCURRENCY="10",
        MQ_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S),
        # Handled messages wait up to a second for their delete: the kill catches some handled, not deleted.
        MQ_DELETION_INTERVAL_S="1",
    )
    async with service_process(env, tmp_path / "first.log") as first:
        await eventually(
            lambda: _has_records(record_file, 35), timeout_s=60, what="35 messages handled before the kill"
        )
        # What the process holds just before the kill (asked of SQS after it, the answer would depend on how
        # fast the test gets there: the held messages become visible again after 2 s).
        in_flight_at_kill = (await first.status())["in_flight"]
        first.process.send_signal(signal.SIGKILL)
        assert await first.exit_code(10) == -signal.SIGKILL
    handled_before = read_records(record_file)
    assert in_flight_at_kill > 0, "the kill should leave messages in flight"
    assert len(handled_before) < MESSAGES

    restarted = time.monotonic()
    async with service_process(env, tmp_path / "second.log") as second:
        # Messages the killed process held come back once their visibility timeout expires: handled after all.
        await eventually(
            lambda: _all_done(sqs, url, record_file, ids), timeout_s=60, what="every message handled after restart"
        )
        done_after_s = time.monotonic() - restarted
        second.process.send_signal(signal.SIGTERM)
        assert await second.exit_code(20) == 0

    report = check(ids, read_records(record_file), await collect_state(sqs, url))
    print(
        f"sigkill: killed after {len(handled_before)} handled with {in_flight_at_kill} in flight; "
        f"all handled {done_after_s:.1f} s after the restart; {report.summary()}"
    )
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.handled == MESSAGES


async def _has_records(record_file: Path, count: int) -> bool:
    return len(read_records(record_file)) >= count


async def _all_done(sqs: SQSClient, url: str, record_file: Path, ids: list[str]) -> bool:
    return set(ids) <= set(read_records(record_file)) and await queue_counts(sqs, url) == (0, 0)
