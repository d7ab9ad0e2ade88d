"""The guard: a Handler that runs the handler it wraps at most once per key, as far as its store can tell."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.checks import check_range, check_seconds
from service.consumer.batching import BatchHandler
from service.consumer.handler import Handler, SyncHandler, as_handler
from service.consumer.message import Message
from service.errors import MAX_VISIBILITY_TIMEOUT, MQError, Retry
from service.idempotency.batches import guard_batches
from service.idempotency.keys import KeyFunction, key_function
from service.idempotency.lease import Lease
from service.idempotency.observer import IdempotencyObserver
from service.idempotency.store import Claim, Store, StoreError

DEFAULT_EXPIRES_S = 3600
# The counters `Idempotent.stats` reports (and /status sums over the queues' guards).
COUNT_NAMES = ("completed", "skipped", "in_progress", "store_errors", "unguarded")
MAX_EXPIRES_S = 365 * 86400
DEFAULT_LEASE_MARGIN_S = 10.0
DEFAULT_IN_PROGRESS_DELAY_S = 5
# Store failures in a row after which the guard reports a problem (readiness fails until a store call succeeds).
UNHEALTHY_AFTER_ERRORS = 3

_log = logging.getLogger("service.idempotency")


class InProgress(Retry):
    """Another consumer runs this message's key right now: the message comes back after a short delay."""


class MissingKey(MQError):
    """The message has no idempotency key (raised only with `require_key`): it is retried, then dead-lettered."""


@dataclass
class Ticket:
    """A claim this guard holds: release it if the handler fails, complete it if it succeeds."""

    key: str
    token: str
    lease_s: float


class Idempotent:
    """A Handler that runs `handler` once per key; build it with `idempotent()` (which documents it)."""

    def __init__(
        self,
        handler: Handler | SyncHandler,
        store: Store,
        *,
        key: str | KeyFunction = "message_id",
        expires_s: int = DEFAULT_EXPIRES_S,
        lease_s: float | None = None,
        lease_margin_s: float = DEFAULT_LEASE_MARGIN_S,
        in_progress_delay_s: int = DEFAULT_IN_PROGRESS_DELAY_S,
        fail_open: bool = False,
        require_key: bool = False,
        namespace: str = "",
        observer: IdempotencyObserver | None = None,
    ) -> None:
        check_range("expires_s", expires_s, 1, MAX_EXPIRES_S)
        check_seconds("lease_margin_s", lease_margin_s, 0, MAX_VISIBILITY_TIMEOUT)
        check_range("in_progress_delay_s", in_progress_delay_s, 0, MAX_VISIBILITY_TIMEOUT)
        if lease_s is not None:
            check_seconds("lease_s", lease_s, 1, MAX_VISIBILITY_TIMEOUT)
        self.handler = as_handler(handler)
        self.store = store
        self.key_of = _namespaced(key_function(key), namespace)
        self.expires_s = expires_s
        self.lease_s = lease_s
        self.lease_margin_s = lease_margin_s
        self.in_progress_delay_s = in_progress_delay_s
        self.fail_open = fail_open
        self.require_key = require_key
        self.observer = observer or IdempotencyObserver()
        self.counts = dict.fromkeys(COUNT_NAMES, 0)
        self.consecutive_store_errors = 0
        self.last_store_error: str | None = None
        self.__name__ = getattr(self.handler, "__name__", "handler")

    async def __call__(self, message: Message) -> None:
        """Claim the message's key, run the handler, record the outcome (see `idempotent`)."""
        await self.run(message, self.handler)

    async def run(self, message: Message, handler: Handler) -> None:
        """Run `handler` for `message` under this guard's claim (what `__call__` does with its own handler)."""
        ticket = await self.claim(message)
        if ticket is None:
            return
        if ticket.key == "":
            await handler(message)  # unguarded: no key, or the store failed with fail_open
            return
        try:
            async with Lease(self.store, ticket.key, ticket.token, ticket.lease_s):
                await handler(message)
        except BaseException:
            await self.release(message, ticket)
            raise
        await self.complete(message, ticket)

    def guarding(self, handler: Handler) -> Handler:
        """`handler` run under this guard (its claims, counters and observer), for a Router's routes."""

        async def guarded(message: Message) -> None:
            await self.run(message, handler)

        guarded.__name__ = getattr(handler, "__name__", "handler")
        return guarded

    def guarding_batches(self, handler: BatchHandler) -> BatchHandler:
        """A batch handler run under this guard (see `service.idempotency.batches`)."""
        return guard_batches(self, handler)

    async def claim(self, message: Message) -> Ticket | None:
        """A Ticket to run the handler under (key "" when unguarded); None to skip; raises to retry the message."""
        key = self.key_of(message)
        if key is None:
            if self.require_key:
                raise MissingKey(f"message {message.message_id} has no idempotency key")
            return self._unguarded(message, "the message has no idempotency key")
        token = uuid.uuid4().hex
        lease_s = self._lease_s(message)
        try:
            found = await self.store.claim(key, token, lease_s)
        except Exception as exc:
            self._store_failed(message, key, exc)
            if self.fail_open:
                return self._unguarded(message, f"the idempotency store failed: {exc!r}")
            raise StoreError(f"the idempotency store failed to claim {key}: {exc!r}") from exc
        self._store_answered()
        if found is Claim.COMPLETED:
            self.counts["skipped"] += 1
            self.observer.skipped(message, key)
            return None
        if found is Claim.IN_PROGRESS:
            self.counts["in_progress"] += 1
            self.observer.in_progress(message, key, self.in_progress_delay_s)
            raise InProgress(self.in_progress_delay_s, f"{key} is being handled by another consumer")
        return Ticket(key, token, lease_s)

    async def complete(self, message: Message, ticket: Ticket) -> None:
        """Record the key as completed; a failure is counted and logged (the handler's success stands)."""
        try:
            await self.store.complete(ticket.key, ticket.token, self.expires_s)
        except Exception as exc:
            self._store_failed(message, ticket.key, exc)
            _log.warning("%s was handled but could not be recorded as completed: %r", ticket.key, exc)
            return
        self._store_answered()
        self.counts["completed"] += 1
        self.observer.completed(message, ticket.key)

    async def release(self, message: Message, ticket: Ticket) -> None:
        """Remove the in-progress record, so the retry can run; a failure leaves it to expire with its lease."""
        try:
            await self.store.release(ticket.key, ticket.token)
        except Exception as exc:
            self._store_failed(message, ticket.key, exc)
            _log.warning("the claim of %s stays until its lease ends: %r", ticket.key, exc)
        else:
            self._store_answered()

    def problem(self) -> str | None:
        """Why messages cannot be handled (the store failed several times in a row), or None."""
        if self.fail_open or self.consecutive_store_errors < UNHEALTHY_AFTER_ERRORS:
            return None
        return f"the idempotency store failed {self.consecutive_store_errors} times in a row: {self.last_store_error}"

    def stats(self) -> dict[str, Any]:
        """Counters since start and the store's state, for /status."""
        errors = {"consecutive_store_errors": self.consecutive_store_errors, "last_store_error": self.last_store_error}
        return {**self.counts, **errors, "problem": self.problem()}

    def _lease_s(self, message: Message) -> float:
        if self.lease_s is not None:
            return self.lease_s
        # A little longer than the message stays invisible: a crashed consumer's claim ends soon after SQS
        # hands its message to another one; the Lease renews it while the handler runs.
        return max(1.0, message.visibility_deadline - time.monotonic()) + self.lease_margin_s

    def _unguarded(self, message: Message, reason: str) -> Ticket:
        self.counts["unguarded"] += 1
        self.observer.unguarded(message, reason)
        return Ticket("", "", 0.0)

    def _store_failed(self, message: Message, key: str, error: BaseException) -> None:
        self.counts["store_errors"] += 1
        self.consecutive_store_errors += 1
        self.last_store_error = repr(error)
        self.observer.store_failed(message, key, error)

    def _store_answered(self) -> None:
        self.consecutive_store_errors = 0


def idempotent(
    handler: Handler | SyncHandler,
    store: Store,
    *,
    key: str | KeyFunction = "message_id",
    expires_s: int = DEFAULT_EXPIRES_S,
    **options: Any,
) -> Idempotent:
    """`handler`, run at most once per key while its completed record lasts (`expires_s`, default 1 hour).

    For each message: derive the key (`message_id`, `deduplication_id`, `body` (a SHA-256 of it),
    `attribute:NAME`, or a function of the message); claim it in `store` as in progress (a lease a little
    longer than the message's visibility, renewed while the handler runs); run the handler; record the key as
    completed, or on failure remove the claim so the retry can run. A key completed before skips the handler
    (the message counts as handled and is deleted); a key another consumer holds raises `InProgress` (a Retry
    after `in_progress_delay_s`, default 5 s). A store that fails fails the message (StoreError: retried by the
    retry policy) unless `fail_open=True`, which runs the handler unguarded. A message without a key runs
    unguarded unless `require_key=True`. Other options: `lease_s` (a fixed lease), `lease_margin_s`,
    `namespace` (a prefix of every key, to share a store), `observer` (an IdempotencyObserver).
    """
    return Idempotent(handler, store, key=key, expires_s=expires_s, **options)


def _namespaced(derive: KeyFunction, namespace: str) -> Callable[[Message], str | None]:
    if not namespace:
        return derive

    def namespaced(message: Message) -> str | None:
        key = derive(message)
        return None if key is None else f"{namespace}:{key}"

    return namespaced
