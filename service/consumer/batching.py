"""Batch handlers: one call for many messages, with a batching window and a per-message outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeAlias, overload

from service.consumer.handler import Handler, SyncHandler, as_handler, to_async
from service.consumer.message import Message
from service.errors import BatchItemFailed, BatchResultError, ConfigError

MAX_BATCH_MESSAGES = 10_000
MAX_BATCH_WAIT_S = 300.0
DEFAULT_BATCH_MESSAGES = 10

BatchResult: TypeAlias = "Iterable[Message] | Mapping[Message, Exception] | None"
"""What a batch function returns: None (every message succeeded), the messages that failed, or a mapping from
each failed message to how it failed (`Retry`, `Reject` or any other exception)."""

BatchFn: TypeAlias = Callable[[Sequence[Message]], Awaitable[BatchResult]]
SyncBatchFn: TypeAlias = Callable[[Sequence[Message]], BatchResult]
AnyHandler: TypeAlias = "Handler | SyncHandler | BatchHandler"
"""What a Server runs: a handler of one message (async or sync), or a batch handler."""
ItemOutcome: TypeAlias = "Exception | None"
"""One message's outcome in a batch: None for success, else how it failed."""


class BatchHandler:
    """A function over a sequence of messages, with how many to gather and for how long (see `batch`)."""

    __slots__ = ("__name__", "fn", "max_messages", "max_wait_s")

    def __init__(self, fn: BatchFn, *, max_messages: int, max_wait_s: float, name: str) -> None:
        self.fn = fn
        self.max_messages = max_messages
        self.max_wait_s = max_wait_s
        self.__name__ = name

    def __repr__(self) -> str:
        return f"batch({self.__name__}, max_messages={self.max_messages}, max_wait_s={self.max_wait_s})"

    async def run(self, messages: Sequence[Message]) -> list[ItemOutcome]:
        """Call the function once; the outcome of each message, in order. Raises only CancelledError."""
        try:
            result = await self.fn(messages)
        except Exception as exc:
            return [exc] * len(messages)
        try:
            return outcomes(messages, result)
        except BatchResultError as exc:
            return [exc] * len(messages)  # nothing is deleted when the answer cannot be read


@overload
def batch(
    fn: BatchFn | SyncBatchFn, *, max_messages: int = DEFAULT_BATCH_MESSAGES, max_wait_s: float = 0.0
) -> BatchHandler: ...


@overload
def batch(
    fn: None = None, *, max_messages: int = DEFAULT_BATCH_MESSAGES, max_wait_s: float = 0.0
) -> Callable[[BatchFn | SyncBatchFn], BatchHandler]: ...


def batch(
    fn: BatchFn | SyncBatchFn | None = None, *, max_messages: int = DEFAULT_BATCH_MESSAGES, max_wait_s: float = 0.0
) -> BatchHandler | Callable[[BatchFn | SyncBatchFn], BatchHandler]:
    """Make `fn` (sync or async, taking a sequence of Messages) a handler that the Server calls with batches;
    without `fn`, a decorator (`@batch(max_messages=100, max_wait_s=1)`).

    The Server gathers up to `max_messages` messages (1 to 10,000) for at most `max_wait_s` seconds (0 to
    300; 0: whatever one receive brought) and runs up to `concurrency` batches at once. `fn` returns None
    (all succeeded), the messages that failed, or a mapping from failed message to exception; raising fails
    every message of the batch.
    """
    if not _is_int(max_messages) or not 1 <= max_messages <= MAX_BATCH_MESSAGES:
        raise ConfigError("max_messages", max_messages, f"an integer from 1 to {MAX_BATCH_MESSAGES}")
    if (
        isinstance(max_wait_s, bool)
        or not isinstance(max_wait_s, int | float)
        or not 0 <= max_wait_s <= MAX_BATCH_WAIT_S
    ):
        raise ConfigError("max_wait_s", max_wait_s, f"a number of seconds from 0 to {MAX_BATCH_WAIT_S:g}")
    wait_s = float(max_wait_s)

    def make(fn: BatchFn | SyncBatchFn) -> BatchHandler:
        name = getattr(fn, "__name__", type(fn).__name__)
        return BatchHandler(to_async(fn), max_messages=max_messages, max_wait_s=wait_s, name=name)

    return make if fn is None else make(fn)


def single(handler: Handler | SyncHandler) -> BatchHandler:
    """A single-message handler as a batch handler of one message (a Router mixing both kinds uses it)."""
    call = as_handler(handler)

    async def one(messages: Sequence[Message]) -> None:
        for message in messages:
            await call(message)

    return BatchHandler(one, max_messages=1, max_wait_s=0.0, name=getattr(handler, "__name__", "handler"))


def outcomes(messages: Sequence[Message], result: BatchResult) -> list[ItemOutcome]:
    """Read a batch function's answer as one outcome per message; BatchResultError when it names a stranger."""
    if result is None:
        return [None] * len(messages)
    members = set(messages)
    if isinstance(result, Mapping):
        failed: dict[Message, Exception] = {}
        for message, error in result.items():
            _check_member(message, members)
            if not isinstance(error, Exception):
                raise BatchResultError(f"the batch handler mapped {message!r} to {error!r}, not an exception")
            failed[message] = error
        return [failed.get(message) for message in messages]
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise BatchResultError(
            f"the batch handler returned {type(result).__name__}: expected None, messages or a mapping"
        )
    reported: set[Message] = set()
    for message in result:
        _check_member(message, members)
        reported.add(message)
    return [BatchItemFailed(message.message_id) if message in reported else None for message in messages]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_member(message: object, members: set[Message]) -> None:
    if not isinstance(message, Message) or message not in members:
        raise BatchResultError(f"the batch handler reported {message!r}, which is not a message of its batch")
