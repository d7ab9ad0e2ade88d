"""The idempotency guard's decisions on the message's span, and counted as metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from service.consumer.message import Message
from service.idempotency.observer import IdempotencyObserver

OUTCOME_ATTRIBUTE = "mq.idempotency.outcome"
KEY_ATTRIBUTE = "mq.idempotency.key"


class IdempotencyTelemetry(IdempotencyObserver):
    """Marks the current span (the message's: the guard runs inside it) and counts `mq.idempotency.messages`.

    Outcomes: completed, skipped (a duplicate), in_progress (held elsewhere), store_error, unguarded.
    """

    def __init__(self, meter: Meter, queue_name: str) -> None:
        self._attrs = {"messaging.destination.name": queue_name}
        self.counts: Counter[str] = Counter()
        meter.create_observable_counter(
            "mq.idempotency.messages",
            callbacks=[self._observe],
            unit="{message}",
            description="Idempotency guard decisions, by outcome",
        )

    def completed(self, message: Message, key: str) -> None:
        self._mark("completed", key)

    def skipped(self, message: Message, key: str) -> None:
        span = self._mark("skipped", key)
        span.add_event("duplicate skipped", {KEY_ATTRIBUTE: key})

    def in_progress(self, message: Message, key: str, delay_s: int) -> None:
        span = self._mark("in_progress", key)
        span.add_event("in progress elsewhere", {KEY_ATTRIBUTE: key, "mq.retry_delay_s": delay_s})

    def store_failed(self, message: Message, key: str, error: BaseException) -> None:
        span = self._mark("store_error", key)
        span.add_event("idempotency store failed", {"exception.type": type(error).__qualname__, KEY_ATTRIBUTE: key})

    def unguarded(self, message: Message, reason: str) -> None:
        span = self._mark("unguarded", None)
        span.add_event("handled unguarded", {"mq.reason": reason})

    def _mark(self, outcome: str, key: str | None) -> trace.Span:
        self.counts[outcome] += 1
        span = trace.get_current_span()
        span.set_attribute(OUTCOME_ATTRIBUTE, outcome)
        if key is not None:
            span.set_attribute(KEY_ATTRIBUTE, key)
        return span

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {**self._attrs, "outcome": o}) for o, count in list(self.counts.items())]
