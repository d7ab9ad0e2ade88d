"""What the pipeline reports: hooks that raise never stop it, receive errors reach the error handler, readiness."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from service import Message, MQError, PipelineObserver, ReceiveError, Server
from tests.support.sqs import QueueFactory, drain_queue, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class Broken(PipelineObserver):
    """An observer whose hooks raise, as a buggy metrics exporter would."""

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        raise RuntimeError("received hook bug")

    def deleted(self, messages: Sequence[Message]) -> None:
        raise KeyError("deleted hook bug")


async def test_observer_hooks_that_raise_are_logged_once_and_never_stop_the_pipeline(
    sqs: SQSClient, make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [f"m{i}" for i in range(6)])

    async def handler(message: Message) -> None:
        pass

    with caplog.at_level(logging.ERROR, logger="service.consumer"):
        async with Server(
            url, handler, client=sqs, concurrency=2, observer=Broken(), deletion_interval_s=0.2
        ) as server:
            await until(lambda: server.health.deleted == 6, what="every message deleted despite the hooks")
            await send_messages(sqs, url, ["m6"])
            await until(lambda: server.health.deleted == 7, what="a later message too")
    assert server.hook_errors["Broken.received: RuntimeError"] >= 2
    assert server.hook_errors["Broken.deleted: KeyError"] >= 2
    logged = [r.getMessage() for r in caplog.records if "observer hook" in r.getMessage()]
    assert sorted(logged) == sorted(
        f"observer hook {key} raised; the pipeline goes on (counted from now on)"
        for key in ("Broken.received: RuntimeError", "Broken.deleted: KeyError")
    )
    assert await drain_queue(sqs, url) == []


async def test_an_error_handler_that_raises_does_not_stop_the_pipeline(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["fails", "works"])
    handled: list[str] = []

    async def handler(message: Message) -> None:
        if message.body == "fails":
            raise ValueError("handler failure")
        handled.append(message.body)

    def error_handler(error: MQError) -> None:
        raise RuntimeError("error handler bug")

    async with Server(url, handler, client=sqs, error_handler=error_handler, retry_policy=None) as server:
        await until(lambda: server.health.failed >= 1 and server.health.deleted == 1, what="both settled")
    assert handled == ["works"]
    assert server.hook_errors["error_handler: RuntimeError"] >= 1


async def test_receive_errors_reach_the_error_handler_with_the_sqs_code(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    missing = (await make_queue()).rsplit("/", 1)[0] + "/never-created"
    errors: list[MQError] = []

    async def handler(message: Message) -> None:
        pass

    async with Server(missing, handler, client=sqs, error_handler=errors.append) as server:
        await until(lambda: len(errors) >= 2, what="two failed attempts")
        assert server.health.not_ready_reason() == str(errors[-1])
    first, second = errors[:2]
    assert isinstance(first, ReceiveError)
    assert isinstance(second, ReceiveError)
    assert (first.code, first.queue_url, first.consecutive, second.consecutive) == (
        "AWS.SimpleQueueService.NonExistentQueue",
        missing,
        1,
        2,
    )
    assert f"queue {missing} does not exist" in str(first)


async def test_ready_once_the_queue_answers_long_before_the_first_long_poll_returns(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()

    async def handler(message: Message) -> None:
        pass

    async with Server(url, handler, client=sqs, wait_time_seconds=20) as server:
        await until(lambda: server.polling > 0, what="a long poll open on the empty queue")
        # The queue check proved the queue and the credentials; the 20 s long poll is still open.
        assert server.health.queue_checked_at is not None
        assert server.health.last_receive_ok_at is None
        assert server.health.not_ready_reason() is None
        summary = await server.drain(timeout_s=0)
        assert summary.handled == 0
        server.hurry()  # the empty long poll brings nothing: do not wait it out
