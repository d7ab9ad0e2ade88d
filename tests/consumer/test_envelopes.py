"""Envelopes through the Server on moto: a real SNS subscription (raw delivery off and on), EventBridge and S3
bodies in their exact shapes, the S3 test event, plain bodies left alone, and a malformed SNS envelope."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from aiobotocore.session import get_session
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service import (
    ConfigError,
    EnvelopeError,
    EventBridgeEnvelope,
    HandlerError,
    Message,
    MQError,
    Router,
    S3Notification,
    Server,
    ServerSettings,
    SnsEnvelope,
)
from service.telemetry import Telemetry
from tests.support.envelopes import eventbridge_event, s3_notification, s3_record, s3_test_event, sns_notification
from tests.support.sqs import QueueFactory, dead_letter_queue_of, drain_queue, queue_counts, send_messages, until

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

FAST = {"wait_time_seconds": 0, "deletion_interval_s": 0.1}


@pytest.fixture
async def sns(sqs_endpoint: str) -> AsyncIterator[Any]:
    """A real SNS client on the moto server that serves SQS (moto delivers to subscribed queues)."""
    async with get_session().create_client("sns", region_name="us-east-1", endpoint_url=sqs_endpoint) as client:
        yield client


async def subscribe(sns: Any, sqs: SQSClient, queue_url: str, *, raw: bool) -> str:
    topic_arn = str((await sns.create_topic(Name=queue_url.rsplit("/", 1)[1]))["TopicArn"])
    attrs = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    subscription = await sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attrs["Attributes"]["QueueArn"])
    if raw:
        await sns.set_subscription_attributes(
            SubscriptionArn=subscription["SubscriptionArn"], AttributeName="RawMessageDelivery", AttributeValue="true"
        )
    return topic_arn


class Seen:
    """What the handlers were called with."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Message]] = []

    def handler(self, name: str) -> Any:
        async def handle(message: Message) -> None:
            self.messages.append((name, message))

        return handle


@pytest.mark.parametrize("raw_delivery", [False, True], ids=["raw-delivery-off", "raw-delivery-on"])
async def test_an_sns_message_reaches_its_route_with_the_inner_body_under_the_producers_span(
    sqs: SQSClient, sns: Any, make_queue: QueueFactory, raw_delivery: bool
) -> None:
    url = await make_queue()
    topic_arn = await subscribe(sns, sqs, url, raw=raw_delivery)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(tracer_provider=provider)
    with provider.get_tracer("producer").start_as_current_span("publish orders", kind=SpanKind.PRODUCER) as producer:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    attributes = {name: {"DataType": "String", "StringValue": value} for name, value in carrier.items()}
    attributes["route"] = {"DataType": "String", "StringValue": "orders.created"}
    await sns.publish(TopicArn=topic_arn, Message='{"order": 7}', Subject="new order", MessageAttributes=attributes)

    seen = Seen()
    router = Router(fallback=seen.handler("fallback"))
    router.handle("orders.created", seen.handler("orders.created"))
    consumer = telemetry.consumer(url)
    server = Server(url, router, client=sqs, middleware=consumer.middleware, observer=consumer, **FAST)  # type: ignore[arg-type]
    async with server:
        await until(lambda: server.health.deleted == 1, what="the SNS message handled and deleted")

    ((route, message),) = seen.messages
    assert (route, message.body, message.route) == ("orders.created", '{"order": 7}', "orders.created")
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("process ")]
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (
        producer.get_span_context().trace_id,
        producer.get_span_context().span_id,
    )
    if raw_delivery:  # SNS's attributes arrive as SQS attributes; nothing to open
        assert message.envelope is None
        assert message.raw_body == '{"order": 7}'
    else:
        envelope = message.envelope
        assert isinstance(envelope, SnsEnvelope)
        assert (envelope.topic_arn, envelope.subject) == (topic_arn, "new order")
        assert envelope.timestamp.endswith("Z")
        assert envelope.message_id == json.loads(message.raw_body)["MessageId"]
        assert json.loads(message.raw_body)["Type"] == "Notification"
        assert (span.attributes or {})["mq.envelope"] == "sns"


async def test_an_eventbridge_event_routes_by_detail_type_unless_a_route_is_set(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [eventbridge_event({"order": 1}, "Order Placed")])
    route = {"route": {"DataType": "String", "StringValue": "explicit"}}
    await send_messages(sqs, url, [eventbridge_event({"order": 2}, "Order Placed")], MessageAttributes=route)
    seen = Seen()
    router = Router()
    router.handle("Order Placed", seen.handler("Order Placed"))
    router.handle("explicit", seen.handler("explicit"))
    server = Server(url, router, client=sqs, **FAST)  # type: ignore[arg-type]
    async with server:
        await until(lambda: server.health.deleted == 2)

    by_route = {name: message for name, message in seen.messages}
    assert json.loads(by_route["Order Placed"].body) == {"order": 1}
    assert json.loads(by_route["explicit"].body) == {"order": 2}
    envelope = by_route["Order Placed"].envelope
    assert isinstance(envelope, EventBridgeEnvelope)
    assert (envelope.source, envelope.detail_type, envelope.account) == (
        "com.example.orders",
        "Order Placed",
        "111122223333",
    )


async def test_s3_notifications_are_parsed_and_the_test_event_is_deleted_unhandled(
    sqs: SQSClient, make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_queue()
    await send_messages(sqs, url, [s3_test_event(), s3_notification(s3_record("a+b.txt", size=5))])
    seen = Seen()
    server = Server(url, seen.handler("s3"), client=sqs, **FAST)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="service.consumer"):
        async with server:
            await until(lambda: server.health.deleted == 2, what="both messages deleted")

    ((_, message),) = seen.messages  # the handler never saw the test event
    assert isinstance(message.envelope, S3Notification)
    assert [(r.bucket, r.key, r.size, r.event_name) for r in message.envelope.records] == [
        ("amzn-s3-demo-bucket", "a b.txt", 5, "ObjectCreated:Put")
    ]
    assert [r.getMessage() for r in caplog.records].count("deleting an s3:TestEvent without calling the handler") == 1
    assert await queue_counts(sqs, url) == (0, 0)


async def test_plain_bodies_are_left_alone_under_auto(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    bodies = ['{"Message": "mine", "Type": "Notification"}', "not json at all", '{"detail-type": "x"}']
    await send_messages(sqs, url, bodies)
    seen = Seen()
    server = Server(url, seen.handler("plain"), client=sqs, **FAST)  # type: ignore[arg-type]
    async with server:
        await until(lambda: server.health.deleted == 3)
    assert sorted(m.body for _, m in seen.messages) == sorted(bodies)
    assert all(m.envelope is None and m.raw_body == m.body for _, m in seen.messages)


async def test_envelope_none_leaves_an_sns_notification_as_it_came(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    body = sns_notification("inner", {"route": {"Type": "String", "Value": "r"}})
    await send_messages(sqs, url, [body])
    seen = Seen()
    server = Server(url, seen.handler("any"), client=sqs, envelope="none", **FAST)  # type: ignore[arg-type]
    async with server:
        await until(lambda: server.health.deleted == 1)
    ((_, message),) = seen.messages
    assert (message.body, message.route, message.envelope) == (body, None, None)


async def test_a_malformed_sns_envelope_is_rejected_with_a_clear_error(
    sqs: SQSClient, make_queue: QueueFactory
) -> None:
    url = await make_queue(max_receive_count=5)
    body = sns_notification("inner", SigningCertURL=None)
    await send_messages(sqs, url, [body])
    seen = Seen()
    errors: list[MQError] = []
    server = Server(url, seen.handler("never"), client=sqs, error_handler=errors.append, retry_policy=None, **FAST)  # type: ignore[arg-type]
    async with server:
        await until(lambda: server.health.rejected == 1 and server.health.deleted == 1)
        assert server.health.receiving  # the pipeline goes on
    assert seen.messages == []
    (error,) = [e for e in errors if isinstance(e, HandlerError)]
    assert isinstance(error.cause, EnvelopeError)
    assert str(error.cause) == "malformed sns envelope: SigningCertURL is missing"
    # A malformed envelope never becomes valid: it is a Reject, in the dead-letter queue on its first receive.
    (dead,) = await drain_queue(sqs, await dead_letter_queue_of(sqs, url))
    assert dead["Body"] == body
    assert dead["MessageAttributes"]["mq_reject_reason"]["StringValue"] == str(error.cause)


def test_an_unknown_envelope_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="envelope: 'sqs' is not allowed; expected one of auto, sns, eventbridge"):
        ServerSettings(envelope="sqs")  # type: ignore[arg-type]
