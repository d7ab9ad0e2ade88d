"""The test kit on its own embedded server and the session's: FIFO order, retries, bounds, envelopes, the plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points

from service import EnvelopeError, Message, Retry, Router
from service.testing import LocalQueue

Queues = Callable[..., LocalQueue]


async def test_a_fifo_group_is_handled_in_order_and_a_failure_retried_in_place(mq_queue: Queues) -> None:
    failed_once: set[str] = set()

    async def handler(message: Message) -> None:
        if message.body == "2" and "2" not in failed_once:
            failed_once.add("2")
            raise RuntimeError("first try fails")

    async with mq_queue(fifo=True, max_receive_count=3) as queue:
        for body in ("1", "2", "3"):
            await queue.publish(body, group_id="a")
        # One message per receive: the server holds a group's next message while one is in flight.
        result = await queue.run(handler, max_number_of_messages=1)
    assert [d.body for d in result.handled] == ["1", "2", "3"]
    assert [(d.body, d.receive_count) for d in result.failed] == [("2", 1)]
    assert result.dead_lettered == []
    assert result.left_in_queue == 0


async def test_a_handlers_retry_delay_is_shortened_without_changing_the_handler(mq_queue: Queues) -> None:
    async def handler(message: Message) -> None:
        if message.receive_count == 1:
            raise Retry(600, "come back in ten minutes")

    async with mq_queue() as queue:
        await queue.publish("later")
        result = await queue.run(handler, timeout_s=20)
    assert not result.timed_out
    assert [(d.receive_count, d.retry_delay_s) for d in result.retried] == [(1, 0)]
    assert [d.receive_count for d in result.handled] == [2]


async def test_the_bound_ends_a_run_that_does_not_go_idle(mq_queue: Queues) -> None:
    async def handler(message: Message) -> None:
        raise RuntimeError("always")

    async with mq_queue(max_receive_count=5) as queue:
        await queue.publish("stuck")
        result = await queue.run(handler, timeout_s=1.0, max_retry_delay_s=None)  # the default policy: 2 s
    assert result.timed_out
    assert [d.retry_delay_s for d in result.retried] == [2]
    assert result.left_in_queue == 1
    assert result.dead_lettered == []


async def test_eventbridge_events_route_by_detail_type_and_a_malformed_envelope_fails(mq_queue: Queues) -> None:
    router = Router()
    seen: list[dict[str, int]] = []
    router.handle("Order Placed", lambda message: seen.append(json.loads(message.body)))
    async with mq_queue(max_receive_count=1) as queue:
        await queue.publish_eventbridge({"order": 7}, detail_type="Order Placed")
        await queue.publish('{"Type": "Notification", "TopicArn": "arn:aws:sns:x", "Message": "m"}')
        result = await queue.run(router)
    assert seen == [{"order": 7}]
    (failure,) = result.failed
    assert isinstance(failure.error, EnvelopeError)
    assert not failure.handler_called
    assert [json.loads(m.body)["Message"] for m in result.dead_lettered] == ["m"]


async def test_a_local_queue_starts_its_own_server_on_loopback() -> None:
    async with LocalQueue(max_receive_count=2) as queue:
        assert queue.endpoint.startswith("http://127.0.0.1:")
        await queue.publish_sns("inner", route="r", attributes={"tenant": "t1"})
        seen: list[tuple[str, str | None, str | None]] = []
        result = await queue.run(lambda m: seen.append((m.body, m.route, m.string_attribute("tenant"))))
    assert seen == [("inner", "r", "t1")]
    assert len(result.handled) == 1


def test_the_plugin_is_registered_as_a_pytest_entry_point() -> None:
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins["mq_service"] == "service.testing.pytest_plugin"
