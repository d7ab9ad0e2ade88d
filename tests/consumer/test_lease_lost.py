"""A handler learns that its message's lease is lost: the queue is purged under it on the local SQS server."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from service import Message, Server
from service.errors import MQError
from tests.support.sqs import QueueFactory, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

VISIBILITY_TIMEOUT = 2  # the heartbeat ticks every 0.5 s and extends messages with less than 1 s left


async def test_a_purge_under_a_running_handler_marks_its_lease_lost(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["work"])
    started = asyncio.Event()
    seen: list[tuple[bool, float]] = []
    errors: list[MQError] = []

    async def handler(message: Message) -> None:
        assert not message.lease_lost
        started.set()
        await asyncio.wait_for(message.wait_lease_lost(), 30)
        seen.append((message.lease_lost, time.monotonic()))

    server = Server(
        url,
        handler,
        client=sqs,
        visibility_timeout=VISIBILITY_TIMEOUT,
        deletion_interval_s=0.2,
        wait_time_seconds=0,
        error_handler=errors.append,
    )
    async with server:
        await asyncio.wait_for(started.wait(), 30)
        await sqs.purge_queue(QueueUrl=url)
        purged_at = time.monotonic()
        await until(lambda: server.health.handled == 1 and not server.in_flight, what="the handler returned")
    [(lost, at)] = seen
    assert lost
    # Within a heartbeat period (an extension is tried once less than half the timeout is left), with room
    # for a busy machine.
    assert at - purged_at < 3 * VISIBILITY_TIMEOUT
    assert server.health.lease_lost == 1
    assert server.health.handled == 1
    assert server.health.deleted == 0  # SQS refused the stale handle: counted as the lost lease
    assert errors == []


async def test_cancel_on_lease_lost_cancels_the_handler(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["work"])
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(message: Message) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = Server(
        url,
        handler,
        client=sqs,
        visibility_timeout=VISIBILITY_TIMEOUT,
        cancel_on_lease_lost=True,
        deletion_interval_s=0.2,
        wait_time_seconds=0,
    )
    async with server:
        await asyncio.wait_for(started.wait(), 30)
        await sqs.purge_queue(QueueUrl=url)
        await asyncio.wait_for(cancelled.wait(), 30)
        await until(lambda: not server.in_flight, what="the message settled")
        assert server.health.lease_lost == 1
        assert server.health.failed == 1
        assert not server.health.draining  # the pipeline goes on: only the handler was cancelled
    assert server.health.deleted == 0
    assert server.health.handled == 0
