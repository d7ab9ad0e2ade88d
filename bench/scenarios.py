"""The scenarios of a run, and how each is run: a worker process on a fresh, preloaded queue."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .backend import Fauxqs
from .measure import proc_cpu_s
from .otlp_receiver import OtlpReceiver

IO_SLEEP_MS = 20.0
PARTITION_KEYS = 100
WORKER_DEADLINE_S = 120.0


@dataclass(frozen=True)
class Sizes:
    """How many messages each kind of scenario moves."""

    noop: int
    boto3: int
    io_per_handler: int
    publish: int
    http_requests: int

    @classmethod
    def for_run(cls, *, quick: bool, messages: int | None) -> Sizes:
        """Full: tens of thousands, so start-up is noise; quick: enough for a smoke test."""
        noop = messages or (5_000 if quick else 30_000)
        return cls(
            noop=noop,
            boto3=max(500, noop // 10),
            io_per_handler=100 if quick else 400,
            publish=noop,
            http_requests=3_000 if quick else 20_000,
        )


@dataclass(frozen=True)
class Scenario:
    """One thing measured; `baseline` names the scenario its ratios are taken against."""

    name: str
    group: str
    label: str
    worker: str = ""
    args: tuple[str, ...] = ()
    messages: int = 0
    keys: int = 0
    concurrency: int = 0
    baseline: str = ""
    fill: bool = True
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ideal_throughput(self) -> float | None:
        """For an I/O-bound handler: concurrency / handler time."""
        sleep_ms = self.notes.get("sleep_ms")
        return self.concurrency / (sleep_ms / 1000) if sleep_ms else None


def consume(
    name: str, label: str, messages: int, *, processor: str = "bounded", concurrency: int = 1, **options: Any
) -> Scenario:
    """A Server scenario."""
    sleep_ms = float(options.get("sleep_ms", 0.0))
    args = ["--kind", "server", "--processor", processor, "--concurrency", str(concurrency)]
    args += ["--client", options.get("client", "botocore"), "--loop", options.get("loop", "asyncio")]
    if sleep_ms:
        args += ["--sleep-ms", str(sleep_ms)]
    if options.get("telemetry"):
        args += ["--telemetry", options["telemetry"]]
    if options.get("batch"):
        args += ["--batch", str(options["batch"])]
    export = options.get("export", "lean") if options.get("telemetry") == "traces" else None
    if export:
        args += ["--export", export]
    if options.get("gc_freeze"):
        args.append("--gc-freeze")
    if options.get("idempotency"):
        args += ["--idempotency", options["idempotency"]]
    keyed = processor == "partitioned"
    return Scenario(
        name=name,
        group=options.get("group", "io" if sleep_ms else "consume"),
        label=label,
        worker="bench.consume",
        args=tuple(args),
        messages=messages,
        keys=PARTITION_KEYS if keyed else 0,
        concurrency=concurrency,
        baseline=options.get("baseline", "floor"),
        notes={"sleep_ms": sleep_ms, "processor": processor, "otlp": export in ("lean", "sdk")},
    )


def build(sizes: Sizes) -> list[Scenario]:
    """Every scenario of a run, baselines first."""
    n, io = sizes.noop, sizes.io_per_handler
    return [
        Scenario("floor", "consume", "floor: bare aiobotocore receive(10) + delete batch, 4 loops", "bench.consume",
                 ("--kind", "floor"), n),
        Scenario("boto3", "consume", "hand-written boto3: receive 1, delete 1", "bench.consume", ("--kind", "boto3"),
                 sizes.boto3, baseline="floor"),
        consume("bounded-1", "Server bounded, concurrency 1", n, concurrency=1),
        consume("bounded-10", "Server bounded, concurrency 10", n, concurrency=10),
        consume("bounded-50", "Server bounded, concurrency 50", n, concurrency=50),
        consume("unbounded", "Server unbounded (1000 in flight at most)", n, processor="unbounded"),
        consume("partitioned-10", "Server partitioned 10, 100 keys", n, processor="partitioned", concurrency=10),
        consume("bounded-10-metrics", "Server bounded 10, metrics on (tracing off)", n, concurrency=10,
                telemetry="metrics", group="tracing"),
        consume("bounded-10-traced", "Server bounded 10, metrics + tracing on", n, concurrency=10,
                telemetry="traces", group="tracing"),
        Scenario("lean-floor", "consume", "lean floor: bare lean-client receive(10) + delete batch, 4 loops",
                 "bench.consume", ("--kind", "floor", "--client", "lean"), n, baseline="floor"),
        consume("lean-bounded-10", "Server bounded 10, lean client", n, concurrency=10, client="lean"),
        consume("lean-bounded-10-uvloop", "Server bounded 10, lean client, uvloop", n, concurrency=10, client="lean",
                loop="uvloop"),
        consume("lean-batch-100", "Server, no-op batch handler (100 messages, 0.1 s window), lean client", n,
                concurrency=10, client="lean", batch=100, baseline="lean-floor"),
        consume("lean-bounded-10-metrics", "Server bounded 10, lean client, metrics on (tracing off)", n,
                concurrency=10, client="lean", telemetry="metrics", group="tracing", baseline="lean-bounded-10"),
        consume("lean-bounded-10-traced", "Server bounded 10, lean client, metrics + tracing, lean OTLP/HTTP export",
                n, concurrency=10, client="lean", telemetry="traces", group="tracing",
                baseline="lean-bounded-10-metrics"),
        consume("lean-bounded-10-traced-gc", "the same, gc.freeze() after start-up", n, concurrency=10,
                client="lean", telemetry="traces", gc_freeze=True, group="tracing",
                baseline="lean-bounded-10-metrics"),
        consume("lean-bounded-10-traced-sdk", "the same through the SDK (MQ_TRACING_EXPORT=sdk), OTLP/HTTP", n,
                concurrency=10, client="lean", telemetry="traces", export="sdk", group="tracing",
                baseline="lean-bounded-10-metrics"),
        consume("lean-bounded-10-traced-discard", "breakdown: SDK spans to a discarding exporter (no encoding)",
                n, concurrency=10, client="lean", telemetry="traces", export="discard", group="tracing",
                baseline="lean-bounded-10-metrics"),
        consume("lean-bounded-10-idempotent", "Server bounded 10, lean client, idempotency guard on Redis", n,
                concurrency=10, client="lean", idempotency="redis", group="idempotency", baseline="lean-bounded-10"),
        consume("io-bounded-10", "I/O 20 ms, bounded 10", io * 10, concurrency=10, sleep_ms=IO_SLEEP_MS),
        consume("io-bounded-50", "I/O 20 ms, bounded 50", io * 50, concurrency=50, sleep_ms=IO_SLEEP_MS),
        consume("io-partitioned-10", "I/O 20 ms, partitioned 10, 100 keys", io * 10, processor="partitioned",
                concurrency=10, sleep_ms=IO_SLEEP_MS),
        Scenario("publish-floor", "publish", "floor: bare SendMessageBatch(10), 4 loops", "bench.publish",
                 ("--kind", "floor"), sizes.publish, fill=False),
        Scenario("publisher", "publish", "Publisher: publish_nowait x N, then await all", "bench.publish",
                 ("--kind", "publisher"), sizes.publish, baseline="publish-floor", fill=False),
        Scenario("lean-publish-floor", "publish", "lean floor: bare SendMessageBatch(10) on the lean client, 4 loops",
                 "bench.publish", ("--kind", "floor", "--client", "lean"), sizes.publish, baseline="publish-floor",
                 fill=False),
        Scenario("lean-publisher", "publish", "Publisher on the lean client", "bench.publish",
                 ("--kind", "publisher", "--client", "lean"), sizes.publish, baseline="publish-floor", fill=False),
        Scenario("http-publish", "http", "HTTP POST /publish, 50 connections, from a second process",
                 messages=sizes.http_requests, fill=False, notes={"connections": 50, "warmup": 500}),
        Scenario("http-publish-1", "http", "HTTP POST /publish, 1 connection (a lone caller)", messages=5,
                 fill=False, notes={"connections": 1, "warmup": 1}),
        Scenario("drain", "drain", "POST /drain with 50 handlers in flight (3-5 s left)", fill=False,
                 notes={"concurrency": 50}),
    ]  # fmt: skip


def run_worker(backend: Fauxqs, scenario: Scenario, python: str = sys.executable) -> dict[str, Any]:
    """Run a worker scenario on a fresh queue; its figures, plus the backend's CPU meanwhile."""
    queue_url = backend.queue(scenario.name)
    receiver: OtlpReceiver | None = None
    try:
        if scenario.fill:
            backend.fill(queue_url, scenario.messages, keys=scenario.keys)
        command = [python, "-m", scenario.worker, "--queue-url", queue_url, "--messages", str(scenario.messages)]
        command += [*scenario.args, "--deadline-s", str(WORKER_DEADLINE_S)]
        environment = backend.environment()
        receiver = OtlpReceiver(python) if scenario.notes.get("otlp") else None
        if receiver is not None:
            environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{receiver.endpoint}/v1/traces"
        backend_cpu = proc_cpu_s(backend.pid)
        began = time.perf_counter()
        done = subprocess.run(
            command,
            check=False,
            env=environment,
            capture_output=True,
            text=True,
            timeout=WORKER_DEADLINE_S + 60,
        )
        elapsed = time.perf_counter() - began
        backend_cpu = proc_cpu_s(backend.pid) - backend_cpu
        received = receiver.counts() if receiver is not None else None
    finally:
        backend.delete_queue(queue_url)
        if receiver is not None:
            receiver.stop()
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_s"] = round(elapsed, 3)
    if received is not None:
        result["spans_received"] = received["spans"]
        result["process_spans_received"] = received["process"]
    result["backend_cpu_s"] = round(backend_cpu, 3)
    return result
