"""Health: what the pipeline reports about itself, for probes, /status and the shutdown summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from service.consumer.message import Message
from service.consumer.observer import PipelineObserver


@dataclass
class Health:
    """Counters and receive-loop state of one Server. Times are `time.monotonic()` values."""

    started_at: float = field(default_factory=time.monotonic)
    receiving: bool = False
    draining: bool = False
    stopped: bool = False
    last_receive_attempt_at: float | None = None
    last_receive_ok_at: float | None = None
    consecutive_receive_errors: int = 0
    last_receive_error: str | None = None
    received: int = 0
    handled: int = 0
    failed: int = 0
    deleted: int = 0
    released: int = 0

    def receive_succeeded(self, count: int) -> None:
        """A receive call returned `count` messages."""
        self.last_receive_attempt_at = self.last_receive_ok_at = time.monotonic()
        self.consecutive_receive_errors = 0
        self.received += count

    def receive_failed(self, reason: str) -> int:
        """A receive call failed; returns the failures in a row."""
        self.last_receive_attempt_at = time.monotonic()
        self.consecutive_receive_errors += 1
        self.last_receive_error = reason
        return self.consecutive_receive_errors

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy, with ages in seconds instead of monotonic times."""
        now = time.monotonic()
        data = asdict(self)
        for name in ("started_at", "last_receive_attempt_at", "last_receive_ok_at"):
            value = data.pop(name)
            data[name.removesuffix("_at") + "_age_s"] = None if value is None else round(now - value, 3)
        return data


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class CountingObserver(PipelineObserver):
    """Counts deletions and hand-backs into Health, then tells the user's observer."""

    def __init__(self, health: Health, inner: PipelineObserver) -> None:
        self._health = health
        self.inner = inner
        self.received = inner.received  # type: ignore[method-assign]
        self.receive_failed = inner.receive_failed  # type: ignore[method-assign]
        self.handled = inner.handled  # type: ignore[method-assign]
        self.retry_scheduled = inner.retry_scheduled  # type: ignore[method-assign]
        self.visibility_extended = inner.visibility_extended  # type: ignore[method-assign]

    def deleted(self, messages: Sequence[Message]) -> None:
        self._health.deleted += len(messages)
        self.inner.deleted(messages)

    def released(self, messages: Sequence[Message]) -> None:
        self._health.released += len(messages)
        self.inner.released(messages)
