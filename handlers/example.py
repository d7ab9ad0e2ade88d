"""The example application: a Router with a route that succeeds, one that is slow, one that always fails, one
that rejects, and a typed one.

Run it with `mq-service run` (MQ_HANDLER defaults to `handlers.example:router`), then publish messages with
the `route` attribute set to `hello`, `slow`, `fail`, `reject` or `order.created` (handlers/orders.py; only
where the `pydantic` extra is installed, as it is for `make run`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging

from service import Message, Reject, Router

DEFAULT_SLOW_SECONDS = 2.0

_log = logging.getLogger("handlers.example")

router = Router()


@router.route("hello")
async def hello(message: Message) -> None:
    """Succeeds at once: the message is deleted."""
    _log.debug("hello", extra={"message_id": message.message_id, "body": message.body})


@router.route("slow")
async def slow(message: Message) -> None:
    """Takes `seconds` from a JSON body such as {"seconds": 5} (default 2), then succeeds."""
    await asyncio.sleep(_seconds(message.body))


@router.route("fail")
async def fail(message: Message) -> None:
    """Always fails: retried with exponential backoff, then moved to the dead-letter queue by SQS."""
    raise RuntimeError(f"the fail route always fails (receive {message.receive_count})")


@router.route("reject")
async def reject(message: Message) -> None:
    """Always rejects: moved to the dead-letter queue at once, on its first receive, with the reason attached."""
    raise Reject(f"the reject route rejects every message (body {message.body[:40]!r})")


# The typed route needs Pydantic, an optional extra: without it the example runs without that route.
if importlib.util.find_spec("pydantic") is not None:
    from handlers.orders import OrderCreated, order_created

    router.handle("order.created", order_created, model=OrderCreated)


def _seconds(body: str) -> float:
    try:
        data = json.loads(body)
    except ValueError:
        return DEFAULT_SLOW_SECONDS
    seconds = data.get("seconds", DEFAULT_SLOW_SECONDS) if isinstance(data, dict) else DEFAULT_SLOW_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return DEFAULT_SLOW_SECONDS
    return float(seconds)
