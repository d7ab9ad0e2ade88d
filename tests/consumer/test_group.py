"""ServerGroup: start several Servers, shut them all down together under one deadline."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from service import Message, Server, ServerGroup
from tests.support.sqs import QueueFactory, drain_queue, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_a_group_consumes_every_queue_and_shuts_down_concurrently(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    urls = [await make_queue() for _ in range(3)]
    for url in urls:
        await send_messages(sqs, url, [f"{url[-4:]}:ok", f"{url[-4:]}:stuck"])
    handled: list[str] = []

    async def handler(message: Message) -> None:
        if message.body.endswith("stuck"):
            await asyncio.Event().wait()  # only cancellation ends it
        handled.append(message.body)

    group = ServerGroup(Server(url, handler, client=sqs, concurrency=2, wait_time_seconds=0) for url in urls)
    await group.start()
    await until(lambda: len(handled) == 3 and all(s.in_flight == 1 for s in group.servers))
    began = time.monotonic()
    summaries = await group.shutdown(timeout_s=2.0)
    # One deadline for all three: concurrent, not one after another (which would take 6 s or more). The rest of
    # the bound is room for the hand-backs and flushes on a busy machine.
    assert time.monotonic() - began < 4.0
    assert [(s.handled, s.deleted, s.cancelled, s.released) for s in summaries] == [(1, 1, 1, 1)] * 3
    for url in urls:
        assert [m["Body"] for m in await drain_queue(sqs, url)] == [f"{url[-4:]}:stuck"]
