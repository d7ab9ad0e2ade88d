"""Router: dispatch by route, custom resolvers, fallback, and unroutable messages staying for retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service import HandlerError, Message, MQError, RouteError, Router, Server
from tests.support.sqs import QueueFactory, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


def message(route: str | None = None, body: str = "b") -> Message:
    attributes = {} if route is None else {"route": {"DataType": "String", "StringValue": route}}
    return Message(
        "q",
        {"MessageId": "m", "ReceiptHandle": "r", "Body": body, "MessageAttributes": attributes},
        visibility_timeout=30,
    )


async def test_routes_by_the_route_attribute() -> None:
    router = Router()
    seen: list[str] = []

    async def foo(m: Message) -> None:
        seen.append(f"foo:{m.body}")

    @router.route("bar")
    def bar(m: Message) -> None:  # a plain function: runs in a thread
        seen.append(f"bar:{m.body}")

    router.handle("foo", foo)
    await router(message("foo", "1"))
    await router(message("bar", "2"))
    assert seen == ["foo:1", "bar:2"]
    assert router.routes == ["bar", "foo"]


async def test_missing_and_unknown_routes_are_errors() -> None:
    router = Router()
    with pytest.raises(RouteError, match="no route"):
        await router(message(None))
    with pytest.raises(RouteError, match="'nope'"):
        await router(message("nope"))


async def test_fallback_and_custom_resolver() -> None:
    seen: list[str] = []

    async def fallback(m: Message) -> None:
        seen.append(f"fallback:{m.body}")

    async def upper(m: Message) -> None:
        seen.append(f"upper:{m.body}")

    router = Router(resolver=lambda m: m.body.split(":")[0], fallback=fallback)
    router.handle("up", upper)
    await router(message(body="up:x"))
    await router(message(body="other:y"))
    assert seen == ["upper:up:x", "fallback:other:y"]


async def test_an_unroutable_message_is_not_deleted(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    await send_messages(sqs, url, ["lost?"], MessageAttributes={"route": {"DataType": "String", "StringValue": "x"}})
    errors: list[MQError] = []
    server = Server(url, Router(), client=sqs, retry_policy=None, error_handler=errors.append, wait_time_seconds=0)
    async with server:
        await until(lambda: server.health.failed == 1)
    assert isinstance(errors[0], HandlerError)
    assert isinstance(errors[0].cause, RouteError)
    assert server.health.deleted == 0
    assert await queue_counts(sqs, url) == (0, 1)
