"""Typed bodies: Message.json() and Message.model(T), and typed routes of the Router (no SQS call involved)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from service import ConfigError, InvalidBody, Message, Reject, Router


class OrderModel(BaseModel):
    order_id: int
    sku: str


@dataclass
class OrderData:
    order_id: int
    sku: str


class OrderDict(TypedDict):  # typing_extensions' TypedDict: Pydantic needs it before Python 3.12
    order_id: int
    sku: str


def message(body: str, route: str | None = "orders.created") -> Message:
    attributes = {} if route is None else {"route": {"DataType": "String", "StringValue": route}}
    raw = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "MessageAttributes": attributes}
    return Message("https://sqs.example/123/q", raw, visibility_timeout=30)


def test_json_decodes_the_body_once() -> None:
    m = message('{"order_id": 1, "items": [1, 2]}')
    first = m.json()
    assert first == {"order_id": 1, "items": [1, 2]}
    assert m.json() is first  # cached: the same object, not a second decoding


def test_json_of_a_null_body_is_none_and_cached() -> None:
    m = message("null")
    assert m.json() is None
    assert m.json() is None


def test_json_of_a_body_that_is_not_json_raises_invalid_body_a_reject() -> None:
    with pytest.raises(InvalidBody, match="the body is not valid JSON") as caught:
        message("{oops").json()
    assert isinstance(caught.value, Reject)
    assert caught.value.reason.startswith("the body is not valid JSON")


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        (OrderModel, OrderModel(order_id=7, sku="A-1")),
        (OrderData, OrderData(order_id=7, sku="A-1")),
        (OrderDict, {"order_id": 7, "sku": "A-1"}),
    ],
    ids=["pydantic", "dataclass", "typeddict"],
)
def test_model_validates_into_a_model_a_dataclass_or_a_typed_dict(type_: type[Any], expected: object) -> None:
    value = message('{"order_id": "7", "sku": "A-1"}').model(type_)
    assert value == expected  # lax mode, as Pydantic's default: "7" became 7
    assert type(value) is type(expected)


@pytest.mark.parametrize("type_", [OrderModel, OrderData, OrderDict], ids=["pydantic", "dataclass", "typeddict"])
def test_a_body_that_does_not_validate_raises_invalid_body_naming_the_field(type_: type[Any]) -> None:
    with pytest.raises(InvalidBody) as caught:
        message('{"order_id": "seven"}').model(type_)
    reason = caught.value.reason
    assert reason.startswith(f"the body does not validate as {type_.__name__}: ")
    assert "order_id: Input should be a valid integer" in reason
    assert "sku: Field required" in reason
    assert "https://" not in reason  # no documentation links in a reason stored with the message


def test_model_of_a_body_that_is_not_json_says_so() -> None:
    with pytest.raises(InvalidBody, match=r"^the body is not valid JSON"):
        message("{oops").model(OrderModel)


async def test_a_typed_route_hands_the_handler_the_validated_value() -> None:
    router = Router()
    got: list[tuple[str, OrderModel]] = []

    @router.route("orders.created", model=OrderModel)
    async def created(m: Message, order: OrderModel) -> None:
        got.append((m.message_id, order))

    await router(message('{"order_id": 7, "sku": "A-1"}'))
    assert got == [("m-1", OrderModel(order_id=7, sku="A-1"))]


async def test_a_sync_typed_handler_runs_in_a_worker_thread() -> None:
    router = Router()
    threads: list[int] = []
    got: list[OrderData] = []

    def created(m: Message, order: OrderData) -> None:
        threads.append(threading.get_ident())
        got.append(order)

    router.handle("orders.created", created, model=OrderData)
    await router(message('{"order_id": 7, "sku": "A-1"}'))
    assert got == [OrderData(7, "A-1")]
    assert threads != [threading.get_ident()]


async def test_an_invalid_body_on_a_typed_route_is_rejected_before_the_handler() -> None:
    router = Router()
    called: list[OrderModel] = []

    @router.route("orders.created", model=OrderModel)
    async def created(m: Message, order: OrderModel) -> None:
        called.append(order)

    with pytest.raises(InvalidBody, match="does not validate as OrderModel"):
        await router(message('{"order_id": 7}'))
    assert called == []


async def test_on_invalid_retry_raises_an_ordinary_error_instead() -> None:
    router = Router()

    @router.route("orders.created", model=OrderModel, on_invalid="retry")
    async def created(m: Message, order: OrderModel) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="the route retries invalid bodies") as caught:
        await router(message("{oops"))
    assert not isinstance(caught.value, Reject)
    assert isinstance(caught.value.__cause__, InvalidBody)


def test_an_unknown_on_invalid_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="on_invalid: 'drop' is not allowed; expected 'reject' or 'retry'"):
        Router().handle("r", lambda m, order: None, model=OrderModel, on_invalid="drop")  # type: ignore[call-overload]


def test_a_type_pydantic_cannot_validate_fails_at_registration() -> None:
    class NotAModel:
        def __init__(self, anything: object) -> None:
            self.anything = anything

    with pytest.raises(Exception, match="NotAModel"):
        Router().handle("r", lambda m, value: None, model=NotAModel)


async def test_plain_handlers_work_unchanged_beside_typed_ones() -> None:
    router = Router()
    bodies: list[str] = []

    @router.route("plain")
    async def plain(m: Message) -> None:
        bodies.append(m.body)

    @router.route("typed", model=OrderModel)
    async def typed(m: Message, order: OrderModel) -> None:
        bodies.append(order.sku)

    await router(message("not json at all", route="plain"))
    await router(message('{"order_id": 1, "sku": "B-2"}', route="typed"))
    assert bodies == ["not json at all", "B-2"]
