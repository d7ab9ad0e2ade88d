"""SQS unreachable for a while mid-run: the service backs off, reports not ready, stays alive, and resumes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import pytest

from service import Message
from service.app.config import Settings
from service.telemetry.hooks import Hooks
from tests.support.reliability import running_service
from tests.support.runtime import Running
from tests.support.sqs import QueueFactory, send_messages, until

from .fault_proxy import FaultProxy
from .invariants import Ledger, body_for, check, collect_state, make_ids

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

SETTINGS = Settings(
    admin_port=0,
    wait_time_seconds=1,
    visibility_timeout=5,
    deletion_interval_s=0.5,
    concurrency=5,
    drain_timeout_s=2,
)
OUTAGE_S = 5.0
# The outage lasts OUTAGE_S, longer if readiness has not failed yet (3 receive errors in a row take longer on a
# busy machine), but no longer than this.
MAX_OUTAGE_S = 30.0
# A hot loop would make hundreds of calls in the outage; the shared backoff allows a handful per loop.
MAX_RECEIVES_IN_OUTAGE = 20
MAX_CPU_SHARE_IN_OUTAGE = 0.25


async def probe(service: Running) -> tuple[int, int]:
    """(/healthz status, /readyz status)."""
    alive = await service.client.get("/healthz")
    ready = await service.client.get("/readyz")
    return alive.status_code, ready.status_code


async def test_sqs_unreachable_mid_run_backs_off_and_loses_nothing(
    sqs: SQSClient,
    make_queue: QueueFactory,
    through_proxy: FaultProxy,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="service.consumer")
    url = await make_queue()
    before, during = make_ids(20, "before"), make_ids(20, "during")

    async def handler(message: Message) -> None:
        ledger.succeeded(message)

    settings = dataclasses.replace(SETTINGS, queue_url=url)
    async with running_service(settings, handler, hooks=Hooks(observer=ledger.observer())) as service:
        await send_messages(sqs, url, [body_for(i) for i in before])
        await until(lambda: set(before) <= set(ledger.deleted), what="first batch deleted")
        assert await probe(service) == (200, 200)

        # The outage: every connection to SQS is reset. Messages keep arriving (sent around the proxy).
        outage = through_proxy.add("reset")
        started, cpu_started = time.monotonic(), time.process_time()
        await send_messages(sqs, url, [body_for(i) for i in during])
        statuses: list[tuple[int, int]] = []
        while _outage_goes_on(time.monotonic() - started, statuses):
            statuses.append(await probe(service))
            await asyncio.sleep(0.2)
        ended, cpu_used = time.monotonic(), time.process_time() - cpu_started
        through_proxy.clear()
        receives = through_proxy.calls_between("ReceiveMessage", started, ended)

        assert outage.injected > 0
        assert {alive for alive, _ in statuses} == {200}, "liveness must not fail because SQS is unreachable"
        assert 503 in {ready for _, ready in statuses}, "readiness must fail while receives fail"
        assert receives <= MAX_RECEIVES_IN_OUTAGE, f"{receives} receive calls in {ended - started:.1f} s: a hot loop"
        assert cpu_used < MAX_CPU_SHARE_IN_OUTAGE * (ended - started), f"{cpu_used:.2f} s of CPU in the outage"

        await until(lambda: set(during) <= set(ledger.deleted), timeout_s=30, what="processing resumed")
        ready = await service.client.get("/readyz")
        assert ready.status_code == 200, ready.text

    # The recovery is logged, with how long SQS was failing (the outage, give or take a backoff). Once, unless a
    # call already on its way through the proxy failed after another had succeeded.
    recoveries = [record for record in caplog.records if record.getMessage().startswith("SQS answers again")]
    assert recoveries, "no log line when SQS answered again"
    recovered = recoveries[0]
    assert recovered.failed_calls > 0  # type: ignore[attr-defined]
    assert 0.5 * OUTAGE_S <= recovered.down_s <= ended - started + 35  # type: ignore[attr-defined]

    report = check(before + during, ledger.successes, await collect_state(sqs, url), deleted=ledger.deleted)
    print(
        f"outage: {outage.injected} calls reset over {ended - started:.1f} s, {receives} receives, "
        f"cpu {cpu_used:.2f} s; {report.summary()}"
    )
    assert report.lost == 0, report.summary()
    assert report.deleted_without_success == 0, report.summary()
    assert report.handled == 40


def _outage_goes_on(elapsed_s: float, statuses: list[tuple[int, int]]) -> bool:
    if elapsed_s >= MAX_OUTAGE_S:
        return False
    return elapsed_s < OUTAGE_S or 503 not in {ready for _, ready in statuses}
