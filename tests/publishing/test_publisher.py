from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from service.aio.backoff import Backoff
from service.errors import ClosedError, ConfigError, PublishError
from service.publishing.entry import PublishOptions
from service.publishing.observer import PublishObserver
from service.publishing.publisher import Publisher
from service.sqs.batch import BatchResult
from tests.support.sqs import CallCounter, QueueFactory, drain_queue, queue_counts

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

FAST = Backoff(base_s=0.01, max_s=0.05)
KIB = 1024
Intercept = Callable[["SQSClient", dict[str, Any]], Awaitable[Any]]


class InterceptedClient:
    """The real client, except that send_message_batch goes through `intercept` (which may call the real one)."""

    def __init__(self, client: SQSClient, intercept: Intercept) -> None:
        self._client = client
        self._intercept = intercept
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send_message_batch(self, **kwargs: Any) -> Any:
        self.batches.append([entry["MessageBody"] for entry in kwargs["Entries"]])
        return await self._intercept(self._client, kwargs)

    def as_client(self) -> SQSClient:
        return cast("SQSClient", self)


class Gate:
    """An intercept that holds every SendMessageBatch until `opened` is set; `called` is set at the first one."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, client: SQSClient, kwargs: dict[str, Any]) -> Any:
        self.called.set()
        await self.opened.wait()
        return await client.send_message_batch(**kwargs)


class HoldFirst:
    """An intercept that holds the first SendMessageBatch until a second one starts (or 0.3 s pass)."""

    def __init__(self) -> None:
        self.calls = 0
        self.second = asyncio.Event()

    async def __call__(self, client: SQSClient, kwargs: dict[str, Any]) -> Any:
        self.calls += 1
        if self.calls == 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.second.wait(), 0.3)
        else:
            self.second.set()
        return await client.send_message_batch(**kwargs)


def fail_entries(bodies: set[str], *, code: str, sender_fault: bool, times: int = 1_000_000) -> Intercept:
    """An intercept that answers entries with these bodies as Failed (the first `times` times) and sends the rest."""
    seen: dict[str, int] = {}

    async def intercept(client: SQSClient, kwargs: dict[str, Any]) -> Any:
        failed: list[dict[str, Any]] = []
        sent: list[dict[str, Any]] = []
        for entry in kwargs["Entries"]:
            body = entry["MessageBody"]
            seen[body] = seen.get(body, 0) + 1
            (failed if body in bodies and seen[body] <= times else sent).append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if sent:
            response = dict(await client.send_message_batch(**{**kwargs, "Entries": sent}))
        failures = [{"Id": e["Id"], "Code": code, "Message": "injected", "SenderFault": sender_fault} for e in failed]
        response["Failed"] = list(response.get("Failed", [])) + failures
        return response

    return intercept


async def bodies_by_id(sqs: SQSClient, url: str) -> dict[str, str]:
    return {m["MessageId"]: m["Body"] for m in await drain_queue(sqs, url)}


@pytest.mark.parametrize("count", [1, 10, 25])
async def test_small_messages_cost_one_call_per_ten(
    pipeline_sqs: SQSClient, sqs: SQSClient, calls: CallCounter, make_queue: QueueFactory, count: int
) -> None:
    url = await make_queue()
    async with Publisher(url, client=pipeline_sqs, publish_interval_s=0.05) as publisher:
        ids = await asyncio.gather(*[publisher.publish_nowait(f"m{i}") for i in range(count)])
    assert calls["SendMessageBatch"] == math.ceil(count / 10)
    assert len(set(ids)) == count
    assert await queue_counts(sqs, url) == (count, 0)
    assert publisher.stats()["published"] == count


async def test_large_bodies_split_by_bytes(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    batch_bytes: list[int] = []

    def output(entries: list[dict[str, Any]], result: BatchResult) -> None:
        batch_bytes.append(sum(len(entry["MessageBody"].encode()) for entry in entries))

    bodies = [letter * (400 * KIB) for letter in "abc"]
    async with Publisher(url, client=sqs, publish_interval_s=0.05, output_handler=output) as publisher:
        ids = await asyncio.gather(*[publisher.publish_nowait(body) for body in bodies])
    assert len(batch_bytes) == 2
    assert all(size <= 1_048_576 for size in batch_bytes)
    received = await bodies_by_id(sqs, url)
    assert [received[message_id] for message_id in ids] == bodies


async def test_each_caller_gets_the_id_of_its_own_message(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    bodies = [f"body-{i}" for i in range(12)]
    async with Publisher(url, client=sqs, publish_interval_s=0.05) as publisher:
        ids = await asyncio.gather(
            *[publisher.publish(body, route=f"r{i}", partition_key=f"k{i % 3}") for i, body in enumerate(bodies)]
        )
    messages = {m["MessageId"]: m for m in await drain_queue(sqs, url)}
    for i, (body, message_id) in enumerate(zip(bodies, ids, strict=True)):
        message = messages[message_id]
        assert message["Body"] == body
        assert message["MessageAttributes"]["route"]["StringValue"] == f"r{i}"
        assert message["MessageAttributes"]["partition_key"]["StringValue"] == f"k{i % 3}"


async def test_fifo_keeps_order_within_a_group(
    pipeline_sqs: SQSClient, sqs: SQSClient, calls: CallCounter, make_queue: QueueFactory
) -> None:
    """Were two batches in flight at once, the held first one would reach SQS after the second."""
    url = await make_queue(fifo=True, ContentBasedDeduplication="true")
    published: dict[str, list[str]] = {"a": [], "b": []}
    wrapper = InterceptedClient(pipeline_sqs, HoldFirst())
    async with Publisher(url, client=wrapper.as_client(), publish_interval_s=0.05) as publisher:
        futures = []
        for i in range(8):
            for group, bodies in published.items():
                bodies.append(f"{group}{i}")
                futures.append(publisher.publish_nowait(f"{group}{i}", group_id=group))
        await asyncio.gather(*futures)
    assert calls["GetQueueAttributes"] == 1  # content-based deduplication asked once
    assert calls["SendMessageBatch"] == 2
    received: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(20):
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"])
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            received[message["Attributes"]["MessageGroupId"]].append(message["Body"])
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        await sqs.delete_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    assert received == published


def test_fifo_refuses_concurrent_batches() -> None:
    with pytest.raises(ConfigError, match="max_in_flight_batches"):
        Publisher("http://localhost/123/q.fifo", max_in_flight_batches=2)


IPV = "InvalidParameterValue"
_ATTRIBUTE = {"DataType": "String", "StringValue": "v"}
INVALID_ENTRIES: list[tuple[bool, dict[str, Any], str]] = [
    (False, {"MessageBody": ""}, "MissingParameter"),
    (False, {"MessageBody": "x" * 1025}, IPV),
    (False, {"MessageBody": "x" * 1000, "MessageAttributes": {"a": {**_ATTRIBUTE, "StringValue": "y" * 30}}}, IPV),
    (False, {"MessageBody": "a\x00b"}, "InvalidMessageContents"),
    (False, {"MessageBody": "\ufffe"}, "InvalidMessageContents"),
    (False, {"MessageBody": "lone \ud800 surrogate"}, "InvalidMessageContents"),
    (False, {"MessageBody": "x", "MessageAttributes": {f"a{i}": _ATTRIBUTE for i in range(11)}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"AWS.trace": _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"amazon.x": _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {".x": _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a..b": _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a b": _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"n" * 257: _ATTRIBUTE}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "string", "StringValue": "v"}}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "abc"}}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Binary", "StringValue": "v"}}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "String"}}}, IPV),
    (False, {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "String", "StringValue": ""}}}, IPV),
    (
        False,
        {"MessageBody": "x", "MessageAttributes": {"a": {"DataType": "String", "StringValue": "\x01"}}},
        "InvalidMessageContents",
    ),
    (False, {"MessageBody": "x", "DelaySeconds": -1}, IPV),
    (False, {"MessageBody": "x", "DelaySeconds": 901}, IPV),
    (False, {"MessageBody": "x", "MessageDeduplicationId": "d"}, IPV),
    (False, {"MessageBody": "x", "QueueUrl": "elsewhere"}, IPV),
    (True, {"MessageBody": "x", "MessageDeduplicationId": "d"}, "MissingParameter"),
    (True, {"MessageBody": "x", "MessageGroupId": "g"}, "MissingParameter"),
    (True, {"MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d", "DelaySeconds": 5}, IPV),
    (True, {"MessageBody": "x", "MessageGroupId": "g" * 129, "MessageDeduplicationId": "d"}, IPV),
]


@pytest.mark.parametrize("case", INVALID_ENTRIES)
async def test_invalid_message_is_refused_before_sending(
    pipeline_sqs: SQSClient,
    sqs: SQSClient,
    calls: CallCounter,
    make_queue: QueueFactory,
    case: tuple[bool, dict[str, Any], str],
) -> None:
    fifo, entry, code = case
    url = await make_queue(fifo=fifo)
    valid: PublishOptions = {"group_id": "g", "deduplication_id": "ok"} if fifo else {}
    async with Publisher(url, client=pipeline_sqs, publish_interval_s=0.05, max_message_bytes=1024) as publisher:
        other = publisher.publish_nowait("ok", **valid)  # the same batch: unaffected
        with pytest.raises(PublishError) as refused:
            await publisher.publish_entry(entry)
        assert refused.value.sender_fault
        assert refused.value.code == code
        assert await other
    assert calls["SendMessageBatch"] == 1
    assert [m["Body"] for m in await drain_queue(sqs, url)] == ["ok"]


async def test_publish_nowait_refuses_invalid_message_at_once(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    async with Publisher(url, client=sqs) as publisher:
        with pytest.raises(PublishError, match="MessageBody must not be empty"):
            publisher.publish_nowait("")
        with pytest.raises(TypeError, match="delay"):
            publisher.publish_nowait("x", delay=5)  # type: ignore[call-arg]
        assert publisher.stats()["buffered"] == 0


async def test_failed_entry_reaches_only_its_caller(sqs: SQSClient, make_queue: QueueFactory) -> None:
    """moto cannot fail one entry of a batch, so a thin wrapper around the real client marks one entry Failed."""
    url = await make_queue()
    wrapper = InterceptedClient(sqs, fail_entries({"bad"}, code="KmsAccessDenied", sender_fault=True))
    async with Publisher(url, client=wrapper.as_client(), publish_interval_s=0.05, backoff=FAST) as publisher:
        results = await asyncio.gather(*[publisher.publish(b) for b in ("a", "bad", "c")], return_exceptions=True)
    good_a, bad, good_c = results
    assert isinstance(bad, PublishError)
    assert (bad.code, bad.sender_fault) == ("KmsAccessDenied", True)
    received = await bodies_by_id(sqs, url)
    assert received == {good_a: "a", good_c: "c"}
    assert wrapper.batches == [["a", "bad", "c"]]  # a final failure is not retried
    assert publisher.stats()["published"] == 2
    assert publisher.stats()["failed"] == 1


async def _throttle_once(client: SQSClient, kwargs: dict[str, Any], state: list[int]) -> Any:
    state.append(1)
    if len(state) == 1:
        error: Any = {
            "Error": {"Code": "ThrottlingException", "Message": "x"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise ClientError(error, "SendMessageBatch")
    return await client.send_message_batch(**kwargs)


@pytest.mark.parametrize("failure", ["entry-not-sender-fault", "call-throttled"])
async def test_transient_failure_is_retried(sqs: SQSClient, make_queue: QueueFactory, failure: str) -> None:
    """moto neither fails single entries nor throttles: a thin wrapper around the real client injects both, once."""
    url = await make_queue()
    state: list[int] = []
    if failure == "entry-not-sender-fault":
        intercept = fail_entries({"flaky"}, code="InternalError", sender_fault=False, times=1)
    else:

        async def intercept(client: SQSClient, kwargs: dict[str, Any]) -> Any:
            return await _throttle_once(client, kwargs, state)

    wrapper = InterceptedClient(sqs, intercept)
    async with Publisher(url, client=wrapper.as_client(), publish_interval_s=0.05, backoff=FAST) as publisher:
        ids = await asyncio.gather(*[publisher.publish(b) for b in ("a", "flaky", "c")])
    assert await bodies_by_id(sqs, url) == dict(zip(ids, ["a", "flaky", "c"], strict=True))
    retried = ["flaky"] if failure == "entry-not-sender-fault" else ["a", "flaky", "c"]
    assert wrapper.batches == [["a", "flaky", "c"], retried]
    assert publisher.stats()["retried"] == len(retried)


async def test_publish_waits_for_room_when_the_buffer_is_full(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    gate = Gate()
    wrapper = InterceptedClient(sqs, gate)
    enqueued: list[str] = []

    class Recorder(PublishObserver):
        def enqueued(self, entry: dict[str, Any]) -> None:
            enqueued.append(entry["MessageBody"])

    publisher = Publisher(
        url,
        client=wrapper.as_client(),
        publish_interval_s=0.05,
        batch_max_messages=2,
        max_in_flight_batches=1,
        max_buffered=2,
        observer=Recorder(),
    )
    async with publisher:
        first = [publisher.publish_nowait(b) for b in ("a", "b")]
        await gate.called.wait()  # a, b are in flight (and held): the buffer is empty again
        second = [publisher.publish_nowait(b) for b in ("c", "d")]
        with pytest.raises(asyncio.QueueFull):
            publisher.publish_nowait("e")
        waiting = asyncio.create_task(publisher.publish("e"))
        await asyncio.sleep(0)  # one scheduler pass: the task runs up to its first suspension
        assert publisher.stats()["waiting"] == 1
        assert publisher.stats()["buffered"] == 2
        assert enqueued == ["a", "b", "c", "d"]
        gate.opened.set()
        ids = await asyncio.gather(*first, *second, waiting)
    assert enqueued == ["a", "b", "c", "d", "e"]
    assert wrapper.batches == [["a", "b"], ["c", "d"], ["e"]]
    assert await bodies_by_id(sqs, url) == dict(zip(ids, "abcde", strict=True))


async def test_shutdown_sends_everything_buffered(
    pipeline_sqs: SQSClient, sqs: SQSClient, calls: CallCounter, make_queue: QueueFactory
) -> None:
    url = await make_queue()
    publisher = Publisher(url, client=pipeline_sqs, publish_interval_s=60)  # only full batches go out by themselves
    await publisher.start()
    futures = [publisher.publish_nowait(f"m{i}") for i in range(25)]
    await publisher.shutdown(10)
    assert all(future.done() for future in futures)
    ids = [future.result() for future in futures]
    assert await bodies_by_id(sqs, url) == {message_id: f"m{i}" for i, message_id in enumerate(ids)}
    assert calls["SendMessageBatch"] == 3
    assert publisher.stats()["buffered"] == 0


async def test_shutdown_deadline_fails_what_was_not_sent(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    gate = Gate()  # never opened: SQS "never answers"
    publisher = Publisher(url, client=InterceptedClient(sqs, gate).as_client(), publish_interval_s=60)
    await publisher.start()
    futures = [publisher.publish_nowait(f"m{i}") for i in range(3)]
    # The deadline leaves the flush time to start its call (on a busy machine, too), which then never returns.
    await asyncio.wait_for(publisher.shutdown(1.0), 10)
    for future in futures:
        with pytest.raises(PublishError) as unsent:
            future.result()
        assert unsent.value.code == "ShutdownTimeout"
    assert gate.called.is_set()
    assert publisher.stats()["failed"] == 3


async def test_publish_after_shutdown_raises(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    publisher = Publisher(url, client=sqs)
    with pytest.raises(RuntimeError, match="not started"):
        await publisher.publish("early")
    async with publisher:
        pass
    with pytest.raises(ClosedError, match="shut down"):
        await publisher.publish("late")
    with pytest.raises(ClosedError, match="shut down"):
        publisher.publish_nowait("late")
    with pytest.raises(ClosedError, match="shut down"):
        await publisher.publish_entry({"MessageBody": "late"})
    assert await queue_counts(sqs, url) == (0, 0)
    assert (await sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1]))["QueueUrl"] == url  # a given client stays open


async def test_second_shutdown_waits_for_the_first(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    gate = Gate()
    publisher = Publisher(url, client=InterceptedClient(sqs, gate).as_client(), publish_interval_s=60)
    await publisher.start()
    future = publisher.publish_nowait("last")
    first = asyncio.create_task(publisher.shutdown(10))
    await gate.called.wait()  # the first shutdown is flushing
    second = asyncio.create_task(publisher.shutdown(10))
    done, _ = await asyncio.wait({second}, timeout=0.2)
    assert not done
    gate.opened.set()
    await second
    assert future.done()
    assert await bodies_by_id(sqs, url) == {future.result(): "last"}
    await first


async def test_output_handler_sees_each_batch_and_cannot_break_publishing(
    sqs: SQSClient, make_queue: QueueFactory, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_queue()
    seen: list[tuple[list[str], BatchResult]] = []

    def output(entries: list[dict[str, Any]], result: BatchResult) -> None:
        seen.append(([entry["MessageBody"] for entry in entries], result))
        raise RuntimeError("a broken output handler")

    async with Publisher(url, client=sqs, publish_interval_s=0.05, output_handler=output) as publisher:
        ids = await asyncio.gather(*[publisher.publish_nowait(f"m{i}") for i in range(15)])
    assert [bodies for bodies, _ in seen] == [[f"m{i}" for i in range(10)], [f"m{i}" for i in range(10, 15)]]
    assert [sorted(r["MessageId"] for r in result.succeeded.values()) for _, result in seen] == [
        sorted(ids[:10]),
        sorted(ids[10:]),
    ]
    assert "a broken output handler" in caplog.text


async def test_observer_may_add_attributes(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    published: dict[str, str] = {}
    failed: list[str] = []

    class Tracing(PublishObserver):
        def enqueued(self, entry: dict[str, Any]) -> None:
            attributes = entry.setdefault("MessageAttributes", {})
            attributes["traceparent"] = {"DataType": "String", "StringValue": f"tp-{entry['MessageBody']}"}

        def published(self, entry: dict[str, Any], message_id: str) -> None:
            published[message_id] = entry["MessageBody"]

        def failed(self, entry: dict[str, Any], error: PublishError) -> None:
            failed.append(entry["MessageBody"])

    full = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(10)}
    async with Publisher(url, client=sqs, publish_interval_s=0.05, observer=Tracing()) as publisher:
        message_id = await publisher.publish("traced")
        with pytest.raises(PublishError, match="11 message attributes"):
            await publisher.publish("crowded", message_attributes=full)
    assert published == {message_id: "traced"}
    assert failed == ["crowded"]
    [message] = await drain_queue(sqs, url)
    assert message["MessageAttributes"]["traceparent"]["StringValue"] == "tp-traced"


async def test_publisher_creates_and_closes_its_own_client(sqs: SQSClient, make_queue: QueueFactory) -> None:
    url = await make_queue()
    async with Publisher(url, publish_interval_s=0.05) as publisher:
        message_id = await publisher.publish("own client")
    assert await bodies_by_id(sqs, url) == {message_id: "own client"}
