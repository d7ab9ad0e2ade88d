"""Pausing, resuming and rate-limiting a running Server, against a real SQS server."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from service import ConfigError, Message, Server
from tests.support.sqs import CallCounter, QueueFactory, eventually, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


async def test_a_paused_server_issues_no_receive_and_resumes_where_it_was(
    sqs: SQSClient, make_queue: QueueFactory, calls: CallCounter
) -> None:
    url = await make_queue()
    handled: list[str] = []

    async def handler(message: Message) -> None:
        handled.append(message.body)

    async with Server(url, handler, client=sqs, concurrency=2, wait_time_seconds=1) as server:
        await send_messages(sqs, url, ["before-1", "before-2"])
        await until(lambda: server.health.deleted == 2, what="the first messages deleted")
        server.pause()
        assert server.paused
        assert server.paused_since is not None
        await until(lambda: server.polling == 0, what="the receive calls in flight returned")
        receives = calls["ReceiveMessage"]
        await send_messages(sqs, url, ["paused-1", "paused-2", "paused-3"])
        await asyncio.sleep(2.5)  # more than two long polls: a running receive loop would have called
        assert calls["ReceiveMessage"] == receives
        assert await queue_counts(sqs, url) == (3, 0)
        server.resume()
        assert not server.paused
        assert server.paused_since is None
        await until(lambda: server.health.deleted == 5, what="the messages sent while paused deleted")
    assert sorted(handled) == ["before-1", "before-2", "paused-1", "paused-2", "paused-3"]


async def test_pausing_hands_back_what_waits_and_lets_the_running_handler_finish(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    release = asyncio.Event()
    started: list[str] = []

    async def handler(message: Message) -> None:
        started.append(message.body)
        await release.wait()

    await send_messages(sqs, url, [f"m{i}" for i in range(3)])
    async with Server(url, handler, client=sqs, concurrency=1, wait_time_seconds=1, visibility_timeout=60) as server:
        await until(lambda: server.in_flight == 3 and len(started) == 1, what="one running, two waiting")
        server.pause()
        # The two waiting messages are visible again at once, not after their 60 s visibility timeout.
        await eventually(lambda: _counts_are(sqs, url, (2, 1)), what="the waiting messages handed back")
        release.set()
        await until(lambda: server.health.deleted == 1, what="the running handler's message deleted")
        # A receive in flight at the pause may bring the two back once more: they are handed back again.
        assert (server.health.handled, server.in_flight) == (1, 0)
        assert server.health.released >= 2
    assert len(started) == 1
    await eventually(lambda: _counts_are(sqs, url, (2, 0)), what="the two waiting messages visible, none in flight")


async def test_a_rate_limit_caps_the_messages_received_per_second(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(30)])
    handled_at: list[float] = []

    async def handler(message: Message) -> None:
        handled_at.append(time.monotonic())

    began = time.monotonic()
    async with Server(url, handler, client=sqs, concurrency=10, max_messages_per_s=10) as server:
        assert server.rate_limit == 10
        await until(lambda: server.health.handled >= 30, timeout_s=60, what="all handled")
    # A burst of at most 10 (one second's worth), then 10 a second: 30 messages take at least 2 s.
    # (A busy machine only makes it slower: the bound holds whatever the load.)
    assert max(handled_at) - began >= 2.0 * 0.9


async def test_the_rate_limit_changes_at_run_time_and_refuses_nonsense(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(12)])

    async def handler(message: Message) -> None:
        pass

    async with Server(url, handler, client=sqs, concurrency=5, max_messages_per_s=0.5) as server:
        await until(lambda: server.health.handled >= 1, what="the first message")
        with pytest.raises(ConfigError, match="max_messages_per_s"):
            server.set_rate_limit(0)
        assert server.rate_limit == 0.5
        server.set_rate_limit(None)  # at 0.5 a second the rest would take over 20 s
        assert server.rate_limit is None
        await until(lambda: server.health.handled >= 12, timeout_s=15, what="the rest handled without a limit")


async def _counts_are(sqs: SQSClient, url: str, expected: tuple[int, int]) -> bool:
    return await queue_counts(sqs, url) == expected


async def test_a_lowered_rate_limit_holds_for_the_receive_calls_already_in_flight(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    started: list[float] = []

    async def handler(message: Message) -> None:
        started.append(time.monotonic())

    # Many receive loops long-poll an empty queue with no limit: each took its tokens before the change.
    async with Server(url, handler, client=sqs, concurrency=40, wait_time_seconds=5, visibility_timeout=60) as server:
        await until(lambda: server.polling >= 3, what="several receive calls in flight")
        polling = server.polling
        server.set_rate_limit(2)
        changed = time.monotonic()
        await send_messages(sqs, url, [f"m{i}" for i in range(30)])
        await asyncio.sleep(4)  # the window measured, after the change
        handled = [at - changed for at in started]
        assert server.rate_limit == 2
        server.set_rate_limit(None)  # the rest at once, so the test ends soon
        await until(lambda: server.health.deleted == 30, timeout_s=60, what="all deleted")
    assert polling >= 3
    # At 2 a second, with a bucket of at most 2: never more than 2 + 2 * t in the first t seconds.
    for limit_s in (1.0, 2.0, 4.0):
        within = [at for at in handled if at <= limit_s]
        assert len(within) <= 2 + 2 * limit_s, (limit_s, handled)
    assert len(handled) >= 2  # it did receive at the lowered rate
