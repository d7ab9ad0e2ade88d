"""The at-least-once invariant, checked at the end of every reliability scenario.

Every published message (its body carries a unique id) must end in one of three places: handled
successfully at least once, still in its queue, or in the dead-letter queue. A message in none of them
is lost. A message the pipeline deleted without a successful handler call broke the promise too.
Handling a message more than once is allowed, and counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service import Message, PipelineObserver

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

# Messages taken for the final count stay invisible this long, so none is counted twice.
_COUNT_VISIBILITY_S = 300
_SHOWN_IDS = 10


def body_for(message_id: str, **fields: Any) -> str:
    """A message body carrying `message_id` (and anything a handler needs, e.g. how long to take)."""
    return json.dumps({"id": message_id, **fields}, separators=(",", ":"))


def id_of(body: str) -> str:
    """The unique id a body made by `body_for` carries; other bodies are their own id."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return str(data["id"]) if isinstance(data, dict) and "id" in data else body


def make_ids(count: int, prefix: str) -> list[str]:
    """`count` unique ids: prefix-000000, prefix-000001, ..."""
    return [f"{prefix}-{i:06d}" for i in range(count)]


@dataclass
class Ledger:
    """What happened to messages, as the handler and the pipeline report it."""

    successes: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)

    def succeeded(self, message: Message) -> None:
        """Call from a handler just before it returns successfully."""
        self.successes[id_of(message.body)] += 1

    async def succeeded_async(self, message: Message) -> None:
        """A handler that only records its success."""
        self.succeeded(message)

    def observer(self) -> LedgerObserver:
        """A PipelineObserver that records the Server's deletions here."""
        return LedgerObserver(self)


class LedgerObserver(PipelineObserver):
    """Records the ids of the messages the Server reports deleted (its `observer.deleted` hook)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def deleted(self, messages: Sequence[Message]) -> None:
        """SQS deleted these handled messages."""
        self.ledger.deleted.update(id_of(message.body) for message in messages)


@dataclass(frozen=True)
class QueueState:
    """The ids left in a queue and in its dead-letter queue, with repeats (a message sent twice is there twice)."""

    remaining: Counter[str]
    dead_lettered: Counter[str]


@dataclass(frozen=True)
class Report:
    """The verdict: tests assert `lost == 0 and deleted_without_success == 0`."""

    published: int
    handled: int
    handler_successes: int
    duplicates: int
    remaining: int
    dead_lettered: int
    lost: int
    deleted_without_success: int
    unexpected: int
    lost_ids: tuple[str, ...] = ()
    deleted_without_success_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was lost and nothing was deleted without a successful handler call."""
        return self.lost == 0 and self.deleted_without_success == 0

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        text = (
            f"published={self.published} handled={self.handled} duplicates={self.duplicates} "
            f"remaining={self.remaining} dead_lettered={self.dead_lettered} lost={self.lost} "
            f"deleted_without_success={self.deleted_without_success} unexpected={self.unexpected}"
        )
        if self.lost_ids:
            text += f" lost_ids={list(self.lost_ids)}"
        if self.deleted_without_success_ids:
            text += f" deleted_without_success_ids={list(self.deleted_without_success_ids)}"
        return text


def check(
    published: Iterable[str],
    successes: Counter[str],
    state: QueueState,
    *,
    deleted: Iterable[str] | None = None,
) -> Report:
    """Compare what was published with where it ended.

    `deleted` is what the pipeline reported deleting (the Server's `observer.deleted`); without it, every
    published message absent from both queues counts as deleted.
    """
    expected = set(published)
    found = set(state.remaining) | set(state.dead_lettered)
    handled = expected & set(successes)
    lost = sorted(expected - handled - found)
    gone = set(deleted) if deleted is not None else expected - found
    without_success = sorted(gone - set(successes))
    return Report(
        published=len(expected),
        handled=len(handled),
        handler_successes=sum(successes.values()),
        duplicates=sum(count - 1 for count in successes.values() if count > 1),
        remaining=sum(state.remaining.values()),
        dead_lettered=sum(state.dead_lettered.values()),
        lost=len(lost),
        deleted_without_success=len(without_success),
        unexpected=len((set(successes) | found) - expected),
        lost_ids=tuple(lost[:_SHOWN_IDS]),
        deleted_without_success_ids=tuple(without_success[:_SHOWN_IDS]),
    )


async def collect_state(
    sqs: SQSClient, queue_url: str, dead_letter_queue_url: str | None = None, *, timeout_s: float = 30.0
) -> QueueState:
    """Receive everything left in the queue, then in its dead-letter queue (the receives may move some there).

    Waits for messages in flight elsewhere to become visible again; fails if some are still invisible after
    `timeout_s`. The messages stay in their queues (invisible for a while).
    """
    remaining = await _take_all(sqs, queue_url, timeout_s)
    dead = Counter[str]() if dead_letter_queue_url is None else await _take_all(sqs, dead_letter_queue_url, timeout_s)
    return QueueState(remaining=remaining, dead_lettered=dead)


async def _take_all(sqs: SQSClient, queue_url: str, timeout_s: float) -> Counter[str]:
    taken: dict[str, str] = {}  # MessageId -> id in the body
    deadline = time.monotonic() + timeout_s
    while True:
        response = await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=_COUNT_VISIBILITY_S,
            AttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        taken.update((m["MessageId"], id_of(m.get("Body", ""))) for m in batch)
        if batch:
            continue
        visible, invisible = await _counts(sqs, queue_url)
        if visible == 0 and invisible <= len(taken):
            return Counter(taken.values())
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue_url}: {invisible - len(taken)} messages still in flight after {timeout_s} s")
        await asyncio.sleep(0.2)


async def _counts(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    response = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)  # type: ignore[arg-type]
    attributes = {str(k): int(v) for k, v in response["Attributes"].items()}
    return attributes[names[0]], attributes[names[1]]
