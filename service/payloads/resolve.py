"""A Handler that gives the inner handler the body an SQS Extended Client sender stored in S3."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.consumer.batching import BatchHandler
from service.consumer.handler import Handler
from service.consumer.message import Message, S3Payload
from service.payloads.observer import PayloadObserver
from service.payloads.pointer import PayloadError, parse_pointer, size_attribute_of, without_size_attribute
from service.payloads.store import S3Store


@dataclass(frozen=True)
class ResolvedPayload(S3Payload):
    """An S3Payload read while handling a message, with the context it was read in (its span, for the delete)."""

    context: contextvars.Context = field(default_factory=contextvars.copy_context, compare=False, repr=False)


class PayloadFetcher:
    """Gives a message marked as offloaded its body from S3 (the original body, the user's attributes without
    the size marker, and `message.s3_payload`); a malformed pointer or a failed read raises PayloadError."""

    def __init__(self, store: S3Store, observer: PayloadObserver) -> None:
        self._store = store
        self._observer = observer

    async def resolve(self, message: Message) -> None:
        """Give `message` its body from S3 if it carries a pointer; raises PayloadError when that fails."""
        if message.s3_payload is None and size_attribute_of(message.message_attributes) is not None:
            await self._resolve(message)

    async def _resolve(self, message: Message) -> None:
        try:
            pointer = parse_pointer(message.body, message.message_attributes)
            body = await self._store.get(pointer.bucket, pointer.key)
        except PayloadError as error:
            self._observer.fetch_failed(error)
            raise
        payload = ResolvedPayload(pointer.bucket, pointer.key, len(body.encode()))
        message.rewrite(body, without_size_attribute(message.message_attributes))
        message.s3_payload = payload
        self._observer.fetched(payload)


class PayloadResolver:
    """Wraps a Handler: a message marked as offloaded gets its body from S3 before the inner handler sees it.

    The inner handler sees the original body and the user's attributes (the size marker removed), and
    `message.s3_payload` says where the body was. A malformed pointer or a failed read raises PayloadError
    before the inner handler is called: the message fails (it is not deleted) and SQS redelivers it, or
    moves it to the dead-letter queue after maxReceiveCount receives.
    """

    def __init__(self, handler: Handler, store: S3Store, *, observer: PayloadObserver | None = None) -> None:
        self.handler = handler
        self._fetcher = PayloadFetcher(store, observer or PayloadObserver())
        self.__name__ = getattr(handler, "__name__", "handler")

    async def __call__(self, message: Message) -> None:
        """Resolve the payload (if any), then call the inner handler."""
        await self._fetcher.resolve(message)
        await self.handler(message)


def resolve_batches(handler: BatchHandler, resolver: PayloadFetcher) -> BatchHandler:
    """A batch handler whose messages carry their S3 bodies: a message whose body cannot be read fails alone."""

    async def resolved(messages: Sequence[Message]) -> dict[Message, Exception]:
        results = await asyncio.gather(*(resolver.resolve(m) for m in messages), return_exceptions=True)
        failed: dict[Message, Exception] = {}
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, Exception):
                failed[message] = result
            elif isinstance(result, BaseException):
                raise result
        ready = [message for message in messages if message not in failed]
        if ready:
            for message, outcome in zip(ready, await handler.run(ready), strict=True):
                if outcome is not None:
                    failed[message] = outcome
        return failed

    return BatchHandler(
        resolved, max_messages=handler.max_messages, max_wait_s=handler.max_wait_s, name=handler.__name__
    )
