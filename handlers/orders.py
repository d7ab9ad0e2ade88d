"""A typed handler: the body validated into a model before the handler runs, and a poison message rejected.

`order_created` gets the message and its body as an `OrderCreated` (a dataclass here; a Pydantic model or a
TypedDict work the same). A body that is not JSON or does not validate never reaches it: the message goes to
the dead-letter queue on its first receive, with the validation error in its `mq_reject_reason` attribute.
An order that validates but can never be fulfilled is rejected by the handler itself with `Reject`.
Needs the `pydantic` extra (`pip install mq-service[pydantic]`).

    MQ_HANDLER=handlers.orders:router mq-service run
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service import Message, Reject, Router

_log = logging.getLogger("handlers.orders")

router = Router()


@dataclass(frozen=True)
class OrderCreated:
    """The body of an `order.created` message, e.g. {"order_id": "o-1", "sku": "A-7", "quantity": 2}."""

    order_id: str
    sku: str
    quantity: int


async def order_created(message: Message, order: OrderCreated) -> None:
    """Reserves the order's stock; an order for no items can never succeed, so it is rejected at once."""
    if order.quantity <= 0:
        raise Reject(f"order {order.order_id} asks for {order.quantity} items")
    _log.info("order reserved", extra={"order_id": order.order_id, "sku": order.sku, "quantity": order.quantity})


router.handle("order.created", order_created, model=OrderCreated)
