"""The pipeline's and the Publisher's metrics, as OpenTelemetry instruments."""

from __future__ import annotations

import time

from opentelemetry.metrics import Meter

# Seconds; covers fast handlers (ms) up to long jobs (minutes).
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class ConsumerMetrics:
    """Counters and histograms of one queue's pipeline; every point carries the queue name."""

    def __init__(self, meter: Meter, queue_name: str) -> None:
        self._attrs = {"messaging.destination.name": queue_name}
        counter, histogram = meter.create_counter, meter.create_histogram
        self.received = counter("mq.messages.received", unit="{message}", description="Messages received")
        self.handled = counter("mq.messages.handled", unit="{message}", description="Handler calls, by outcome")
        self.deleted = counter("mq.messages.deleted", unit="{message}", description="Messages deleted")
        self.released = counter("mq.messages.released", unit="{message}", description="Messages handed back")
        self.retried = counter("mq.messages.retried", unit="{message}", description="Retry delays scheduled")
        self.extended = counter("mq.visibility.extended", unit="{message}", description="Heartbeat extensions")
        self.empty_receives = counter("mq.receive.empty", unit="{call}", description="Receives that got nothing")
        self.receive_errors = counter("mq.receive.errors", unit="{call}", description="Failed receives")
        self.handler_duration = histogram(
            "mq.handler.duration",
            unit="s",
            description="Handler duration",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.age = histogram(
            "mq.message.age",
            unit="s",
            description="Time from SentTimestamp to the end of handling",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.receive_duration = histogram(
            "mq.receive.duration",
            unit="s",
            description="ReceiveMessage latency",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.in_flight = meter.create_up_down_counter(
            "mq.messages.in_flight",
            unit="{message}",
            description="Messages received and not yet handled or handed back",
        )

    def add(self, counter_name: str, count: int, **attributes: str) -> None:
        """Add to one of the counters above, by attribute name."""
        if count != 0:
            getattr(self, counter_name).add(count, {**self._attrs, **attributes})

    def handled_message(self, duration_s: float, sent_timestamp_ms: str | None, outcome: str) -> None:
        """Record one handler call."""
        attrs = {**self._attrs, "outcome": outcome}
        self.handled.add(1, attrs)
        self.in_flight.add(-1, self._attrs)
        self.handler_duration.record(duration_s, attrs)
        if sent_timestamp_ms is not None:
            self.age.record(max(0.0, time.time() - int(sent_timestamp_ms) / 1000), self._attrs)

    def receive(self, duration_s: float, count: int) -> None:
        """Record one receive call."""
        self.receive_duration.record(duration_s, self._attrs)
        self.add("received", count)
        self.add("in_flight", count)
        if count == 0:
            self.add("empty_receives", 1)


class PublishMetrics:
    """Publish results and latency for one queue."""

    def __init__(self, meter: Meter, queue_name: str) -> None:
        self._attrs = {"messaging.destination.name": queue_name}
        self.published = meter.create_counter("mq.publish.messages", unit="{message}", description="Publish results")
        self.latency = meter.create_histogram(
            "mq.publish.duration",
            unit="s",
            description="From publish to SQS's answer",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )

    def result(self, duration_s: float, outcome: str) -> None:
        """Record one message's publish outcome."""
        attrs = {**self._attrs, "outcome": outcome}
        self.published.add(1, attrs)
        self.latency.record(duration_s, attrs)
