"""The pipeline's and the Publisher's metrics, as OpenTelemetry instruments.

Counters are kept as plain integers and read by observable instruments when the metrics are collected:
per message they cost an integer addition, not an SDK measurement. Only the handler-duration histogram goes
through the SDK on every message; the message age is recorded once per receive (its oldest message), which
is what a lag panel plots, at a tenth of the cost.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

# Seconds; covers fast handlers (ms) up to long jobs (minutes).
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# Messages per batch: from batches of one up to the largest batch a handler may ask for (10,000).
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

# name -> (unit, description); an observable counter each, points split by their `outcome` where they have one.
_COUNTERS = {
    "mq.messages.received": ("{message}", "Messages received"),
    "mq.messages.handled": ("{message}", "Handler calls, by outcome"),
    "mq.messages.deleted": ("{message}", "Messages deleted after success"),
    "mq.messages.released": ("{message}", "Messages handed back unhandled"),
    "mq.messages.rejected": ("{message}", "Messages sent to the dead-letter queue by a handler's Reject"),
    "mq.messages.retried": ("{message}", "Retry delays scheduled"),
    "mq.visibility.extended": ("{message}", "Heartbeat extensions"),
    "mq.messages.lease_lost": ("{message}", "Messages whose lease was lost (visibility no longer held)"),
    "mq.messages.held_back": ("{message}", "Messages over their group's cap, held in the pod or handed back"),
    "mq.receive.empty": ("{call}", "Receives that got nothing"),
    "mq.receive.errors": ("{call}", "Failed receives"),
}


class ConsumerMetrics:
    """Counters and histograms of one queue's pipeline; every point carries the queue name.

    The queues of one process share the instruments: the first queue's ConsumerMetrics creates them (an
    instrument is registered once per meter), each later one is built `sharing` it and is observed with it.
    """

    def __init__(self, meter: Meter, queue_name: str, *, sharing: ConsumerMetrics | None = None) -> None:
        self._attrs = {"messaging.destination.name": queue_name}
        self._by_outcome = {o: {**self._attrs, "outcome": o} for o in ("success", "failure")}
        self.counts: Counter[tuple[str, str]] = Counter()  # (metric name, outcome or "") -> count
        if sharing is not None:
            sharing._family.append(self)
            self._family: list[ConsumerMetrics] = sharing._family
            self._handler_duration: Histogram = sharing._handler_duration
            self._age: Histogram = sharing._age
            self._batch_size: Histogram = sharing._batch_size
            self._receive_duration: Histogram = sharing._receive_duration
            return
        self._family = [self]
        for name, (unit, description) in _COUNTERS.items():
            meter.create_observable_counter(name, callbacks=[self._observe(name)], unit=unit, description=description)
        meter.create_observable_up_down_counter(
            "mq.messages.in_flight",
            callbacks=[self._observe_in_flight],
            unit="{message}",
            description="Messages received, not yet handled or handed back",
        )
        self._handler_duration = meter.create_histogram(
            "mq.handler.duration", unit="s", description="Handler duration", explicit_bucket_boundaries_advisory=BUCKETS
        )
        self._age = meter.create_histogram(
            "mq.message.age",
            unit="s",
            description="Time from SentTimestamp to receipt, of the oldest message of each receive",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self._batch_size = meter.create_histogram(
            "mq.batch.size",
            unit="{message}",
            description="Messages per call of a batch handler",
            explicit_bucket_boundaries_advisory=BATCH_SIZE_BUCKETS,
        )
        self._receive_duration = meter.create_histogram(
            "mq.receive.duration",
            unit="s",
            description="ReceiveMessage latency",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )

    def add(self, name: str, count: int, outcome: str = "") -> None:
        """Count `count` more for a counter named in `_COUNTERS`."""
        self.counts[name, outcome] += count

    def handled_message(self, duration_s: float, outcome: str) -> None:
        """Record one handler call."""
        self.counts["mq.messages.handled", outcome] += 1
        self._handler_duration.record(duration_s, self._by_outcome[outcome])

    def batch(self, size: int) -> None:
        """Record one call of a batch handler with `size` messages."""
        self._batch_size.record(size, self._attrs)

    def receive(self, duration_s: float, count: int, oldest_sent_timestamp_ms: int | None = None) -> None:
        """Record one receive call, and the age of the oldest message it brought."""
        self._receive_duration.record(duration_s, self._attrs)
        self.counts["mq.messages.received", ""] += count
        if count == 0:
            self.counts["mq.receive.empty", ""] += 1
        if oldest_sent_timestamp_ms is not None:
            self._age.record(max(0.0, time.time() - oldest_sent_timestamp_ms / 1000), self._attrs)

    def _observe(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(count, member._by_outcome[outcome] if outcome else member._attrs)
                for member in self._family
                for (metric, outcome), count in list(member.counts.items())
                if metric == name
            ]

        return observe

    def _observe_in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        return [member._in_flight() for member in self._family]

    def _in_flight(self) -> Observation:
        counts = self.counts
        handled = counts["mq.messages.handled", "success"] + counts["mq.messages.handled", "failure"]
        return Observation(
            counts["mq.messages.received", ""] - handled - counts["mq.messages.released", ""], self._attrs
        )


class PublishMetrics:
    """Publish results and latency for one queue."""

    def __init__(self, meter: Meter, queue_name: str) -> None:
        self._attrs = {"messaging.destination.name": queue_name}
        self._by_outcome = {o: {**self._attrs, "outcome": o} for o in ("success", "failure")}
        self.published = meter.create_counter("mq.publish.messages", unit="{message}", description="Publish results")
        self.latency = meter.create_histogram(
            "mq.publish.duration",
            unit="s",
            description="From publish to SQS's answer",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )

    def result(self, duration_s: float, outcome: str) -> None:
        """Record one message's publish outcome."""
        attrs = self._by_outcome[outcome]
        self.published.add(1, attrs)
        self.latency.record(duration_s, attrs)


class OperatorMetrics:
    """Operator actions through the admin API (pause, resume, limits, peek, redrive), by action and outcome."""

    def __init__(self, meter: Meter) -> None:
        self._actions = meter.create_counter(
            "mq.operator.actions", unit="{action}", description="Operator actions, by action and outcome"
        )

    def action(self, action: str, outcome: str) -> None:
        """Count one action; `outcome` is ok, refused or failed."""
        self._actions.add(1, {"action": action, "outcome": outcome})


class SpanExportMetrics:
    """The lean span exporter's counts, read when the metrics are collected."""

    def __init__(self, meter: Meter, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats
        for key, description in (
            ("exported", "Spans the lean exporter sent"),
            ("dropped", "Spans the lean exporter dropped: queue full, or the receiver did not take them"),
        ):
            meter.create_observable_counter(
                f"mq.traces.spans.{key}", callbacks=[self._observe(key)], unit="{span}", description=description
            )

    def _observe(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self._stats()[key])]

        return observe
