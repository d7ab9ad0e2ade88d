"""Health: what the pipeline reports about itself, for probes, /status and the shutdown summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from service.consumer.message import Message
from service.consumer.observer import PipelineObserver

# Readiness falls after this many receive errors in a row (the receive loop backs off meanwhile).
READY_MAX_RECEIVE_ERRORS = 3


@dataclass
class Health:
    """Counters and receive-loop state of one Server. Times are `time.monotonic()` values.

    The counters are derived from the pipeline's events by `HealthObserver`, their only writer; the
    state flags are written by the Server alone.
    """

    started_at: float = field(default_factory=time.monotonic)
    receiving: bool = False
    draining: bool = False
    stopped: bool = False
    paused: bool = False
    queue_checked_at: float | None = None
    last_receive_attempt_at: float | None = None
    last_receive_ok_at: float | None = None
    consecutive_receive_errors: int = 0
    last_receive_error: str | None = None
    received: int = 0
    handled: int = 0
    failed: int = 0
    deleted: int = 0
    released: int = 0
    rejected: int = 0
    lease_lost: int = 0
    held_back: int = 0

    def not_ready_reason(self) -> str | None:
        """Why the pipeline should get no traffic now, or None when it is ready."""
        if self.draining:
            return "draining"
        if self.stopped or not self.receiving:
            return "the message pipeline is not running"
        if self.queue_checked_at is None and self.last_receive_ok_at is None:
            return self.last_receive_error or "the queue has not answered yet"
        if self.consecutive_receive_errors >= READY_MAX_RECEIVE_ERRORS:
            return f"{self.consecutive_receive_errors} receive errors in a row: {self.last_receive_error}"
        return None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy, with ages in seconds instead of monotonic times."""
        now = time.monotonic()
        data = asdict(self)
        for name in ("started_at", "queue_checked_at", "last_receive_attempt_at", "last_receive_ok_at"):
            value = data.pop(name)
            data[name.removesuffix("_at") + "_age_s"] = None if value is None else round(now - value, 3)
        return data


class HealthObserver(PipelineObserver):
    """Keeps a Health's counters from the pipeline's events."""

    def __init__(self, health: Health) -> None:
        self._health = health

    def queue_checked(self) -> None:
        """The queue answered a first call: it exists and the credentials work."""
        self._health.queue_checked_at = time.monotonic()
        self._health.consecutive_receive_errors = 0

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        health = self._health
        health.last_receive_attempt_at = health.last_receive_ok_at = time.monotonic()
        health.consecutive_receive_errors = 0
        health.received += len(messages)

    def receive_failed(self, error: Exception, duration_s: float) -> None:
        health = self._health
        health.last_receive_attempt_at = time.monotonic()
        health.consecutive_receive_errors += 1
        health.last_receive_error = str(error)

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        if error is None:
            self._health.handled += 1
        else:
            self._health.failed += 1

    def deleted(self, messages: Sequence[Message]) -> None:
        self._health.deleted += len(messages)

    def released(self, messages: Sequence[Message]) -> None:
        self._health.released += len(messages)

    def rejected(self, messages: Sequence[Message]) -> None:
        self._health.rejected += len(messages)

    def lease_lost(self, message: Message, reason: str) -> None:
        self._health.lease_lost += 1

    def held_back(self, message: Message) -> None:
        self._health.held_back += 1


@dataclass(frozen=True)
class ShutdownSummary:
    """What became of the messages over the Server's life, as reported when it stopped."""

    handled: int
    failed: int
    deleted: int
    released: int
    cancelled: int
    timed_out: bool
    duration_s: float
    rejected: int = 0  # sent to the dead-letter queue by a Reject (and deleted, so also in `deleted`)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)
