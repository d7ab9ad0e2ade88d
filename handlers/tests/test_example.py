"""The example handlers, tested as a user's suite tests its own: with the test kit's `mq_queue` fixture."""

from __future__ import annotations

from collections.abc import Callable

from handlers.example import router
from service.testing import LocalQueue


async def test_hello_is_handled_and_deleted(mq_queue: Callable[..., LocalQueue]) -> None:
    async with mq_queue() as queue:
        await queue.publish("hi", route="hello")
        result = await queue.run(router)
    assert [d.body for d in result.handled] == ["hi"]
    assert result.left_in_queue == 0


async def test_a_failing_handler_dead_letters_after_max_receive_count(mq_queue: Callable[..., LocalQueue]) -> None:
    async with mq_queue(max_receive_count=2) as queue:
        await queue.publish("boom", route="fail")
        result = await queue.run(router)
    assert [d.receive_count for d in result.failed] == [1, 2]
    assert [m.body for m in result.dead_lettered] == ["boom"]


async def test_an_sns_wrapped_message_reaches_its_route(mq_queue: Callable[..., LocalQueue]) -> None:
    async with mq_queue() as queue:
        await queue.publish_sns('{"seconds": 0}', route="slow")
        result = await queue.run(router)
    ((delivery,),) = [result.handled]
    assert (delivery.body, delivery.message.route) == ('{"seconds": 0}', "slow")
