"""The prose of RESULTS.md around the figures: method, settings, targets, profiles, how to rerun."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ANALYSIS = BENCH_DIR / "ANALYSIS.md"

METHOD = """\
## Method

- **Backend**: fauxqs 1.9.2 (Node) on a free 127.0.0.1 port, started by `bench/fauxqs/server.mjs`. Each run of a
  scenario gets a new queue, preloaded inside fauxqs through its own SendMessageBatch action (no HTTP, so
  preloading costs nothing), and deleted afterwards.
- **Isolation**: every scenario runs in a fresh `python -m bench.<worker>` process. The worker measures itself:
  CPU is `user + sys` from `resource.getrusage(RUSAGE_SELF)` around the measured phase (from the first call until
  the N-th message is deleted, or published), so fauxqs's CPU is never counted; throughput is N over the wall
  time of that phase; peak RSS is the worker's own VmHWM (`ru_maxrss` would not do: Linux carries it over
  from the parent across fork and exec, so it starts at the harness's peak). SQS calls are counted with a
  botocore `before-call.sqs` hook on the worker's client.
- **Baselines, same run, same backend**: *floor* is the cheapest consumer aiobotocore allows: 4 loops sharing
  one client, each ReceiveMessage(10) then one DeleteMessageBatch, asking for the same attributes as the Server.
  *boto3* is what a user writes by hand: receive one message, delete it (N/10 messages: its per-message figures
  do not depend on N). *publish-floor* is 4 bare SendMessageBatch(10) loops. Ratios are taken against the
  baseline of the same run, which is what makes them comparable on a shared, noisy machine.
- **Repeats**: repeats are interleaved (every scenario once, then again), and the table shows the median;
  peak RSS is the maximum over the repeats.
- **HTTP /publish**: `python -m service run` (the real service, admin API on 127.0.0.1) consumes an empty queue
  and publishes to another; `python -m bench.http_load` POSTs `{"body": ...}` from a second process over 50
  keep-alive connections, closed loop, after 200 warm-up requests. CPU and peak RSS of the service process come
  from `/proc/PID`.
- **Drain**: the service runs `bench.drain_handler:handler` at concurrency 50; 100 messages each say when their
  handler must end (3 to 5 s ahead). Once 50 handlers run, `GET /drain` is sent; drain time is until its answer
  (everything settled and flushed) and is compared with the longest time any running handler still had.
- **Profiles**: where a CPU target is missed, the scenario and the floor are run once more under
  `py-spy record` (250 Hz, only samples taken while the event loop runs). Each sample is charged to the innermost
  frame owned by a module of `service/`, the SQS client stack, asyncio, anyio or OpenTelemetry. py-spy names
  the OpenTelemetry SDK's files without their package (`metrics/_internal/...`), so SDK time is charged to the
  `service/telemetry` module that called it. The µs columns multiply a profile's shares (one run under py-spy)
  by the scenario's median CPU per message (other runs), so read them to a few µs.
"""

SETTINGS = """\
## Settings

The Server runs as a deployment would: `wait_time_seconds=20` (long polls; with a deep queue a receive returns
at once, so this only matters when the queue is empty), `max_number_of_messages=10`, the default
`visibility_timeout=30`, and the default deletion interval of 10 s with batches of 10. The deletion interval
does not slow a busy consumer: a batch goes out as soon as 10 messages are handled, and only a partial batch
waits for the interval. N is a multiple of 10, so the last batch is full too. The client is the service's own
(`service.sqs.client.create_client`, botocore retries off): aiobotocore's for the scenarios measured since the
start (`floor`, `bounded-*`, `publisher`...), the lean client (the service's default now) for the `lean-*`
ones, whose ratios are taken against the aiobotocore floors of the same run. The HTTP and drain scenarios run
`python -m service run` with its defaults: the lean client, on uvloop. Handlers: no-op `async def`, or
`asyncio.sleep(0.02)` for I/O. Partitioned scenarios carry a `partition_key` String attribute, 100 keys round-robin.
"""

RERUN = """\
## How to rerun

```
make bench                         # installs fauxqs (npm ci) and bench/requirements.txt, then runs everything
.venv/bin/python -m bench.run --quick              # about a minute: small N, one repeat, no profiles
.venv/bin/python -m bench.run --only bounded-10,io-bounded-10 --repeats 5
.venv/bin/python -m bench.run --profile bounded-10 # py-spy profiles of named scenarios (bench/out/)
```

Needs Node 20 (fauxqs 1.9.2) and the project's venv. Outputs: `bench/RESULTS.md`, `bench/results.json` (every
run's raw figures), `bench/chart.png`; profiles and service logs go to `bench/out/` (not committed).
"""


def render(results: dict[str, Any], *, table: str, chart_written: bool) -> str:
    """The whole of RESULTS.md."""
    meta = results["meta"]
    parts = [
        "# Benchmark results",
        f"Measured {meta['date']} on {meta['machine']}, Python {meta['python']}; {meta['repeats']} repeat(s), "
        f"whole run {meta['elapsed_s']:.0f} s{' (quick run)' if meta['quick'] else ''}. This file is written by "
        "`python -m bench.run`; the findings come from `bench/ANALYSIS.md`.",
        "## Targets\n\n" + _targets(results["targets"]),
        "## Results\n\n" + table + "\n\nRatios are against each scenario's baseline: the aiobotocore floor, except the "
        "publishers (publish-floor), lean-batch-100 (lean-floor), the lean scenarios with tracing "
        "(lean-bounded-10-metrics, itself against lean-bounded-10) and lean-bounded-10-idempotent (lean-bounded-10); "
        "CPU is the consumer's own, per message.",
    ]
    if chart_written:
        parts.append("![chart](chart.png)")
    parts += [METHOD, SETTINGS]
    if results.get("profiles"):
        parts.append(_profiles(results["profiles"], results["scenarios"]))
    if ANALYSIS.exists():
        parts.append(ANALYSIS.read_text().strip())
    parts.append(RERUN)
    return "\n\n".join(part.strip() for part in parts) + "\n"


def _targets(verdicts: list[dict[str, Any]]) -> str:
    marks = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["| target | scenario | measured | limit | verdict |", "|---|---|---|---|---|"]
    for v in verdicts:
        measured = v["measured"] if v["measured"] is not None else v.get("note", "-")
        lines.append(f"| {v['target']} | {v['scenario']} | {measured} | {v['limit']} | {marks[v['met']]} |")
    return "\n".join(lines)


def _profiles(profiles: dict[str, Any], summary: dict[str, dict[str, Any]]) -> str:
    lines = ["## Profiles (py-spy, this run)"]
    if "error" in profiles:
        return "\n\n".join([*lines, profiles["error"]])
    lines.append(_owner_table(profiles, summary))
    for name, profile in profiles.items():
        if "error" in profile:
            lines.append(f"**{name}**: {profile['error']}")
            continue
        top = "\n".join(f"| {frame} | {pct:.1f}% |" for frame, pct in profile["top_self"])
        lines.append(f"**{name}**, top frames by own time ({profile['samples']} samples):\n\n"
                     f"| frame | self |\n|---|---|\n{top}")  # fmt: skip
        inclusive = profile.get("top_service_inclusive") or []
        if inclusive:
            rows = "\n".join(f"| {frame} | {pct:.1f}% |" for frame, pct in inclusive)
            lines.append(f"{name}, `service/` frames by inclusive time:\n\n| frame | inclusive |\n|---|---|\n{rows}")
    return "\n\n".join(lines)


def _owner_table(profiles: dict[str, Any], summary: dict[str, dict[str, Any]]) -> str:
    """CPU per message by owner: each profile's share times the scenario's measured CPU per message."""
    names = [n for n, p in profiles.items() if "owners" in p and summary.get(n, {}).get("cpu_us_per_msg")]
    owners = list(dict.fromkeys(owner for n in names for owner, _ in profiles[n]["owners"]))
    header = "| owner (µs of CPU per message) | " + " | ".join(names) + " |"
    lines = [header, "|---|" + "---|" * len(names)]
    for owner in owners:
        cells = []
        for n in names:
            share = dict(profiles[n]["owners"]).get(owner, 0.0)
            cells.append(f"{share / 100 * summary[n]['cpu_us_per_msg']:.1f} ({share:.0f}%)")
        lines.append(f"| {owner} | " + " | ".join(cells) + " |")
    lines.append("| **total (measured)** | " + " | ".join(f"{summary[n]['cpu_us_per_msg']:.1f}" for n in names) + " |")
    return "\n".join(lines)
