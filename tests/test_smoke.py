from __future__ import annotations

import asyncio

from service import Message, Server

from .conftest import QueueFactory, queue_counts, send_messages


async def test_round_trip(sqs, make_queue: QueueFactory) -> None:  # type: ignore[no-untyped-def]
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(15)])
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(message: Message) -> None:
        seen.append(message.body)
        if len(seen) == 15:
            done.set()

    server = Server(url, handler, concurrency=4, deletion_interval_s=0.5, wait_time_seconds=1)
    await server.start()
    await asyncio.wait_for(done.wait(), 20)
    summary = await server.shutdown(5)
    assert sorted(seen) == sorted(f"m{i}" for i in range(15))
    assert summary.deleted == 15
    assert await queue_counts(sqs, url) == (0, 0)
