"""LocalQueue: a queue and its dead-letter queue on the embedded local SQS server, for testing handlers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

from aiobotocore.session import get_session

from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.message import MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY, MESSAGE_ATTRIBUTE_NAME_ROUTE, Message
from service.consumer.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from service.consumer.server import Server
from service.consumer.settings import ServerOptions
from service.errors import Retry
from service.sqs.local import REGION, create_queue_with_dead_letter_queue, start_moto_server
from service.testing.bodies import eventbridge_body, sns_body
from service.testing.result import DeadLetter, Recorder, RunResult

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

DEFAULT_MAX_RECEIVE_COUNT = 3
DEFAULT_RUN_TIMEOUT_S = 30.0
DEFAULT_FIFO_GROUP = "default"
# Short polls and prompt deletes: a test's queue is idle soon after its last message was handled.
RUN_DEFAULTS: ServerOptions = {"wait_time_seconds": 1, "deletion_interval_s": 0.05}
_IDLE_POLL_S = 0.1
_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


class LocalQueue:
    """A standard or FIFO queue with a dead-letter queue, on an embedded SQS server on 127.0.0.1 (moto).

    ```python
    async with LocalQueue(max_receive_count=2) as queue:
        await queue.publish("order 7", route="orders.created")
        result = await queue.run(router)
    assert [d.body for d in result.dead_lettered] == ["order 7"]
    ```

    It starts its own server on a free port unless given the `endpoint` of one (the pytest fixture
    `mq_queue` shares one per test session). `run` consumes with a real `Server` until the queue is idle;
    retry delays are capped at `max_retry_delay_s` (0 by default), the handler's `Retry(delay_s)` included,
    so retries happen at once without changing the handler. Needs the `local` extra.
    """

    def __init__(
        self,
        *,
        fifo: bool = False,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        visibility_timeout: int = 30,
        endpoint: str | None = None,
    ) -> None:
        self.fifo = fifo
        self.max_receive_count = max_receive_count
        self.visibility_timeout = visibility_timeout
        self.endpoint = endpoint or ""
        self.url = ""
        self.dead_letter_queue_url = ""
        self._own_endpoint = endpoint is None
        self._stack = AsyncExitStack()
        self._client: SQSClient | None = None

    @property
    def client(self) -> SQSClient:
        """The aiobotocore SQS client of the local server (for what the helpers do not cover)."""
        if self._client is None:
            raise RuntimeError("use the LocalQueue in `async with` first")
        return self._client

    async def __aenter__(self) -> LocalQueue:
        try:
            if self._own_endpoint:
                server, self.endpoint = start_moto_server()
                self._stack.callback(server.stop)
            self._client = await self._stack.enter_async_context(open_client(self.endpoint))
            await self._create()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._own_endpoint:  # a shared server: leave it as it was
                for url in (self.url, self.dead_letter_queue_url):
                    await self.client.delete_queue(QueueUrl=url)
        finally:
            await self._stack.aclose()

    async def publish(
        self,
        body: str,
        *,
        route: str | None = None,
        partition_key: str | None = None,
        attributes: Mapping[str, str] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        delay_s: int = 0,
    ) -> str:
        """Send one message (String attributes; on a FIFO queue, group "default" unless `group_id`); its id."""
        named = {MESSAGE_ATTRIBUTE_NAME_ROUTE: route, MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY: partition_key}
        values = {**(attributes or {}), **{name: value for name, value in named.items() if value is not None}}
        entry: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body, "DelaySeconds": delay_s}
        if values:
            entry["MessageAttributes"] = {n: {"DataType": "String", "StringValue": v} for n, v in values.items()}
        if self.fifo or group_id is not None:
            entry["MessageGroupId"] = group_id or DEFAULT_FIFO_GROUP
        if deduplication_id is not None:
            entry["MessageDeduplicationId"] = deduplication_id
        return str((await self.client.send_message(**entry))["MessageId"])

    async def publish_sns(
        self,
        message: str,
        *,
        route: str | None = None,
        attributes: Mapping[str, str] | None = None,
        subject: str | None = None,
        group_id: str | None = None,
    ) -> str:
        """Send `message` wrapped as SNS delivers it with raw delivery off (`route` and `attributes` inside)."""
        inner = {**(attributes or {}), **({MESSAGE_ATTRIBUTE_NAME_ROUTE: route} if route is not None else {})}
        return await self.publish(sns_body(message, inner, subject=subject), group_id=group_id)

    async def publish_eventbridge(
        self, detail: Mapping[str, Any], *, detail_type: str, source: str = "local.test", group_id: str | None = None
    ) -> str:
        """Send an EventBridge event carrying `detail` (the Router routes it by `detail_type`)."""
        return await self.publish(eventbridge_body(detail, detail_type=detail_type, source=source), group_id=group_id)

    async def run(
        self,
        handler: Handler | SyncHandler,
        *,
        timeout_s: float = DEFAULT_RUN_TIMEOUT_S,
        max_retry_delay_s: int | None = 0,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
        **options: Unpack[ServerOptions],
    ) -> RunResult:
        """Consume with a Server running `handler` until the queue is idle (or `timeout_s` passed); what happened.

        `options` are the Server's; `max_retry_delay_s` caps every retry delay (None: as the policy and the
        handler say).
        """
        result = RunResult()
        recorder = Recorder(result)
        policy = retry_policy
        if max_retry_delay_s is not None and retry_policy is not None:
            policy = _Capped(retry_policy, max_retry_delay_s)
        settings: ServerOptions = {"visibility_timeout": self.visibility_timeout, **RUN_DEFAULTS, **options}
        server = Server(
            self.url,
            _recording(as_handler(handler), recorder, max_retry_delay_s),
            client=self.client,
            retry_policy=policy,
            observer=recorder,
            error_handler=recorder.error,
            **settings,
        )
        deadline = time.monotonic() + timeout_s
        async with server:
            while not await self._idle(server):
                if time.monotonic() > deadline:
                    result.timed_out = True
                    break
                await asyncio.sleep(_IDLE_POLL_S)
        result.dead_lettered = await self.dead_letters()
        result.left_in_queue = sum(await self._counts(self.url))
        return result

    async def dead_letters(self) -> list[DeadLetter]:
        """The messages in the dead-letter queue (left there, visible)."""
        found: dict[str, dict[str, Any]] = {}
        while True:
            response = await self.client.receive_message(
                QueueUrl=self.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            batch = [m for m in response.get("Messages", []) if m["MessageId"] not in found]
            if not batch:
                break
            found.update((m["MessageId"], dict(m)) for m in batch)
        handles = [m["ReceiptHandle"] for m in found.values()]
        for start in range(0, len(handles), 10):  # visible again for the next look
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ]
            await self.client.change_message_visibility_batch(QueueUrl=self.dead_letter_queue_url, Entries=entries)  # type: ignore[arg-type]
        return [_dead_letter(m) for m in found.values()]

    async def _idle(self, server: Server) -> bool:
        return sum(await self._counts(self.url)) == 0 and server.in_flight == 0

    async def _counts(self, url: str) -> list[int]:
        response = await self.client.get_queue_attributes(QueueUrl=url, AttributeNames=list(_COUNTS))  # type: ignore[arg-type]
        return [int(response["Attributes"].get(name, 0)) for name in _COUNTS]  # type: ignore[call-overload]

    async def _create(self) -> None:
        name = f"test-{uuid.uuid4().hex[:12]}"
        suffix = ".fifo" if self.fifo else ""
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if self.fifo else {}
        self.url, self.dead_letter_queue_url = await create_queue_with_dead_letter_queue(
            self.client,
            name + suffix,
            dead_letter_queue_name=f"{name}-dlq{suffix}",
            max_receive_count=self.max_receive_count,
            attributes=attributes,
        )


def open_client(endpoint: str) -> Any:
    """An aiobotocore SQS client of the local server at `endpoint` (test credentials, never the environment's)."""
    return get_session().create_client(
        "sqs", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test"
    )


@dataclass(frozen=True, slots=True)
class _Capped:
    """A retry policy whose delays are at most `max_s`."""

    policy: RetryPolicy
    max_s: int

    def delay_s(self, receive_count: int) -> int | None:
        delay = self.policy.delay_s(receive_count)
        return None if delay is None else min(delay, self.max_s)


def _recording(handler: Handler, recorder: Recorder, max_retry_delay_s: int | None) -> Handler:
    """`handler`, noting each call and capping the delay of a `Retry` it raises."""

    async def recording(message: Message) -> None:
        recorder.called.add(message)
        try:
            await handler(message)
        except Retry as retry:
            if max_retry_delay_s is not None:
                retry.delay_s = min(retry.delay_s, max_retry_delay_s)
            raise

    return recording


def _dead_letter(raw: Mapping[str, Any]) -> DeadLetter:
    attributes = raw.get("MessageAttributes", {})
    strings = {name: str(value["StringValue"]) for name, value in attributes.items() if "StringValue" in value}
    return DeadLetter(str(raw["MessageId"]), str(raw.get("Body", "")), strings)
