"""The lean spans' exporter: encoded spans queued in memory, sent in batches over OTLP/HTTP by a thread.

A span is encoded when it ends (`otlp_encoder.encode_span`), so the queue holds bytes, which the garbage
collector never scans. A background thread sends a batch when `batch_size` spans wait or every `interval_s`,
retries a failed send (429, 502, 503, 504, a connection error) with back-off within the timeout, and drops
what it cannot send. A span that finds the queue full is dropped too. Every drop is counted (`stats()`, read
by the `mq.traces.spans.dropped` metric and /status) and logged at most once a minute.

Configuration is OpenTelemetry's: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT (seconds, as the
Python SDK reads it), _COMPRESSION (gzip or none), and the batch processor's OTEL_BSP_SCHEDULE_DELAY,
OTEL_BSP_MAX_QUEUE_SIZE and OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource

from service.telemetry.lean_spans import SCOPE_NAME, LeanSpan
from service.telemetry.otlp_encoder import encode_request, encode_resource, encode_scope, encode_span

_log = logging.getLogger("service.telemetry")
_RETRYABLE = frozenset({429, 502, 503, 504})
_LOG_EVERY_S = 60.0
# Larger than the SDK's 2048: a pod consuming 10,000+ messages/s fills 2048 in a fifth of a second.
DEFAULT_MAX_QUEUE = 20_000
DEFAULT_BATCH = 512
DEFAULT_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class OtlpSettings:
    """Where and how spans are sent."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    compression: str = "none"
    max_queue: int = DEFAULT_MAX_QUEUE
    batch_size: int = DEFAULT_BATCH
    interval_s: float = DEFAULT_INTERVAL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str], endpoint: str) -> OtlpSettings:
        """The settings the OTEL_* variables give, for the traces `endpoint` already resolved."""

        def get(name: str) -> str:
            value = environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or environ.get(f"OTEL_EXPORTER_OTLP_{name}")
            return (value or "").strip()

        compression = get("COMPRESSION").lower() or "none"
        max_queue = _number(environ, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE)
        return cls(
            endpoint=endpoint,
            headers=parse_headers(get("HEADERS")),
            timeout_s=_number(environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0)
            or _number(environ, "OTEL_EXPORTER_OTLP_TIMEOUT", DEFAULT_TIMEOUT_S),
            compression="gzip" if compression == "gzip" else "none",
            max_queue=int(max_queue),
            batch_size=int(min(max_queue, _number(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH))),
            interval_s=_number(environ, "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_INTERVAL_S * 1000) / 1000,
        )


def parse_headers(value: str) -> dict[str, str]:
    """`key1=value1,key2=value2` (URL-encoded, as OTEL_EXPORTER_OTLP_HEADERS is written) as a dict."""
    headers = {}
    for item in value.split(","):
        key, sep, text = item.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(text.strip())
    return headers


class OtlpSpanExporter:
    """A `SpanSink`: encodes each ended span and sends the spans in batches from a background thread."""

    def __init__(self, settings: OtlpSettings, resource: Resource) -> None:
        self.settings = settings
        self._resource = encode_resource(resource.attributes, resource.schema_url)
        self._scope = encode_scope(SCOPE_NAME)
        self._queue: deque[bytes] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self.accepted = 0
        self.exported = 0
        self._dropped_full = 0  # counted on the event loop
        self._dropped_unsent = 0  # counted by the thread
        self.failed_requests = 0
        self._last_logged = 0.0
        self._connection: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="mq-otlp-spans", daemon=True)
        self._thread.start()

    def on_end(self, span: LeanSpan) -> None:
        """Encode the span and queue it; drop it (counted) when the queue is full."""
        queue = self._queue
        if len(queue) >= self.settings.max_queue or self._stopping:
            self._dropped_full += 1
            self._log_drop(1, "the export queue is full")
            return
        queue.append(encode_span(span))
        self.accepted += 1
        if len(queue) == self.settings.batch_size:
            self._wake.set()

    @property
    def dropped(self) -> int:
        """Spans dropped since start: the queue was full, or the receiver did not take them."""
        return self._dropped_full + self._dropped_unsent

    def stats(self) -> dict[str, int]:
        """Spans accepted, exported and dropped since start, and how many wait."""
        return {
            "accepted": self.accepted,
            "exported": self.exported,
            "dropped": self.dropped,
            "queued": len(self._queue),
            "failed_requests": self.failed_requests,
        }

    def shutdown(self) -> None:
        """Send what is queued (within the timeout) and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self.settings.timeout_s + 1)

    def _run(self) -> None:
        batch_size = self.settings.batch_size
        while True:
            self._wake.wait(self.settings.interval_s)
            self._wake.clear()
            stopping = self._stopping
            # Full batches as they come; a partial one on each tick; everything once stopping.
            while self._queue:
                self._send_batch(stopping)
                if not stopping and len(self._queue) < batch_size:
                    break
            if stopping:
                break
        if self._connection is not None:
            self._connection.close()

    def _send_batch(self, stopping: bool) -> None:
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), self.settings.batch_size))]
        if self._post(encode_request(self._resource, self._scope, batch)):
            self.exported += len(batch)
            return
        lost = len(batch)
        if stopping:  # the receiver is not answering: do not hold the exit for every batch left
            lost += len(queue)
            queue.clear()
        self._dropped_unsent += lost
        self._log_drop(lost, "the OTLP receiver did not take them")

    def _post(self, body: bytes) -> bool:
        settings = self.settings
        headers = {**settings.headers, "Content-Type": "application/x-protobuf"}
        if settings.compression == "gzip":
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        give_up_at = time.monotonic() + settings.timeout_s
        delay_s = 0.1
        while True:
            status = self._request(body, headers)
            if 200 <= status < 300:
                return True
            self.failed_requests += 1
            if (status and status not in _RETRYABLE) or time.monotonic() + delay_s > give_up_at:
                return False
            time.sleep(delay_s)
            delay_s *= 2

    def _request(self, body: bytes, headers: dict[str, str]) -> int:
        """The HTTP status, or 0 when the request did not get an answer."""
        url = urllib.parse.urlsplit(self.settings.endpoint)
        try:
            if self._connection is None:
                kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
                self._connection = kind(url.netloc, timeout=self.settings.timeout_s)
            self._connection.request("POST", url.path or "/", body, headers)
            response = self._connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            return 0

    def _log_drop(self, count: int, reason: str) -> None:
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_S:
            self._last_logged = now
            _log.warning(
                "dropped %d span(s): %s (%d dropped since start; endpoint %s)",
                count,
                reason,
                self.dropped,
                self.settings.endpoint,
            )


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        _log.warning("%s=%r is not a number: using %s", name, raw, default)
        return default
    return value if value > 0 else default
