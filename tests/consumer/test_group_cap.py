"""A fair share per message group (`max_in_flight_per_group`) under a noisy group, on the local SQS server."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from service import Message, Server
from tests.support.sqs import QueueFactory, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

BACKLOG = 240
QUIET_GROUPS = 10


@pytest.mark.parametrize("processor", ["bounded", "unbounded"])
async def test_a_noisy_group_does_not_delay_the_others(
    sqs: SQSClient, make_queue: QueueFactory, processor: str
) -> None:
    # moto serves the oldest visible message first (no fair-queue preference), so the quiet groups'
    # messages, published after the backlog, are reached only once the backlog is out of the way.
    url = await make_queue()
    await send_messages(sqs, url, [f"noisy:{i}" for i in range(BACKLOG)], MessageGroupId="noisy")
    for group in range(QUIET_GROUPS):
        await send_messages(sqs, url, [f"quiet{group}:0"], MessageGroupId=f"quiet{group}")
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    noisy_done = 0
    quiet_done: dict[str, int] = {}  # quiet group -> noisy messages handled before it

    async def handler(message: Message) -> None:
        nonlocal noisy_done
        group = message.group_id or ""
        running[group] += 1
        peak[group] = max(peak[group], running[group])
        try:
            await asyncio.sleep(0.2 if group == "noisy" else 0.05)
        finally:
            running[group] -= 1
        if group == "noisy":
            noisy_done += 1
        else:
            quiet_done.setdefault(group, noisy_done)

    server = Server(
        url,
        handler,
        client=sqs,
        processor=processor,  # type: ignore[arg-type]
        concurrency=10,
        max_in_flight_per_group=2,
        deletion_interval_s=0.5,
        wait_time_seconds=0,
    )
    async with server:
        await until(lambda: len(quiet_done) == QUIET_GROUPS, timeout_s=90, what="every quiet group handled")
    assert max(quiet_done.values()) < BACKLOG * 2 // 3, quiet_done
    assert max(peak.values()) <= 2, peak
    assert server.health.held_back > 0
