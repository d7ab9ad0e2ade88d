"""Soak: tens of thousands of messages through the whole service on fauxqs; memory, tasks and sockets must stay flat.

    .venv/bin/python -m tests.reliability.soak --messages 30000

Starts fauxqs on loopback (bench/fauxqs, installed with npm if needed), runs the service in this process
(Server, Publisher and admin API), publishes the messages through the service's Publisher while it
consumes them (1 in 100 fails its first attempt and is retried), and samples RSS, asyncio tasks and open
sockets. Prints a summary; exits 1 if a message was lost or deleted without success, RSS grew between the
first and the last quartile of the run, or tasks or sockets leaked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from service import Message, PipelineObserver, Retry
from service.app.config import Settings
from service.app.runtime import Runtime
from service.sqs.client import create_client
from service.telemetry.hooks import Hooks

from .invariants import Report, body_for, check, collect_state, id_of, make_ids

ROOT = Path(__file__).resolve().parents[2]
FAUXQS_DIR = ROOT / "bench" / "fauxqs"
PAGE_BYTES = resource.getpagesize()
MIB = 1024 * 1024
# RSS may grow this much from the first to the last quartile of the run (allocator noise), no more.
RSS_GROWTH_LIMIT = 0.10
RSS_GROWTH_FLOOR_MIB = 8.0
TASK_SLACK = 10
SOCKET_SLACK = 4
PUBLISHERS = 200  # publish calls in flight at once (the Publisher batches them)
WARM_UP_SHARE = 0.1  # the first tenth of the samples (pools and caches filling) is left out of the quartiles
FAIL_ONE_IN = 100


@dataclass(frozen=True)
class Sample:
    """One observation of the process."""

    at_s: float
    rss_mib: float
    tasks: int
    sockets: int
    handled: int


@dataclass
class Verdict:
    """The soak's checks and their figures."""

    checks: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(self.checks.values())


def rss_mib() -> float:
    """This process's resident set size."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES / MIB


def open_sockets() -> int:
    """Sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


# ---- fauxqs ---------------------------------------------------------------------------------------------------


def install_fauxqs() -> None:
    """npm-install bench/fauxqs's pinned fauxqs if it is not there yet."""
    if (FAUXQS_DIR / "node_modules" / "fauxqs").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("soak: npm is needed to install fauxqs (bench/fauxqs/package.json)")
    command = "ci" if (FAUXQS_DIR / "package-lock.json").exists() else "install"
    subprocess.run([npm, command, "--no-audit", "--no-fund"], cwd=FAUXQS_DIR, check=True, timeout=300)


@asynccontextmanager
async def fauxqs() -> AsyncIterator[str]:
    """fauxqs on a free loopback port (bench/fauxqs/server.mjs); yields its endpoint URL."""
    install_fauxqs()
    process = await asyncio.create_subprocess_exec(
        "node", str(FAUXQS_DIR / "server.mjs"), "0", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the starter exits when its input closes
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def create_queues() -> tuple[str, str]:
    """A queue and its dead-letter queue (after 5 receives)."""
    async with create_client(kind="botocore") as client:
        dlq = (await client.create_queue(QueueName="soak-dlq"))["QueueUrl"]
        arn = (await client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
        url = (await client.create_queue(QueueName="soak", Attributes={"RedrivePolicy": redrive}))["QueueUrl"]
    return url, dlq


# ---- the run ----------------------------------------------------------------------------------------------------


class CompactLedger(PipelineObserver):
    """Successes, attempts and deletions counted in arrays sized up front, so the bookkeeping itself does not grow.

    Message n carries the id `soak-<n>` (see `make_ids`). Installed as the Server's observer, it counts deletions.
    """

    def __init__(self, messages: int) -> None:
        self.successes = array("H", bytes(2 * messages))
        self.attempts = array("H", bytes(2 * messages))
        self.deletions = array("H", bytes(2 * messages))
        self.handled_total = 0
        self.deleted_total = 0

    def deleted(self, messages: Sequence[Message]) -> None:
        """SQS deleted these handled messages."""
        for message in messages:
            self.deletions[message_number(message)] += 1
        self.deleted_total += len(messages)

    def as_counters(self, ids: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
        """(successes, deletions) by id, for the invariant checker."""
        successes = Counter({ids[n]: count for n, count in enumerate(self.successes) if count})
        deletions = Counter({ids[n]: count for n, count in enumerate(self.deletions) if count})
        return successes, deletions


def message_number(message: Message) -> int:
    """n of the id `soak-<n>` in the message's body."""
    return int(id_of(message.body).rsplit("-", 1)[1])


@dataclass
class Soak:
    """One soak run: the service, the ledger of what happened, the samples."""

    messages: int
    concurrency: int
    sample_s: float
    timeout_s: float
    samples: list[Sample] = field(default_factory=list)
    ledger: CompactLedger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = CompactLedger(self.messages)

    async def handler(self, message: Message) -> None:
        """Succeeds, except the first attempt of one message in FAIL_ONE_IN (visible again at once)."""
        n = message_number(message)
        self.ledger.attempts[n] += 1
        if n % FAIL_ONE_IN == 0 and self.ledger.attempts[n] == 1:
            raise Retry(0, "a first attempt that fails")
        self.ledger.successes[n] += 1
        self.ledger.handled_total += 1

    async def run(self, url: str, dlq: str) -> tuple[Report, float, dict[str, Any]]:
        """Publish and consume every message; returns the invariant report, the duration and the drain summary."""
        ids = make_ids(self.messages, "soak")
        settings = Settings(
            queue_url=url, admin_port=0, concurrency=self.concurrency, wait_time_seconds=1, deletion_interval_s=1
        )
        runtime = Runtime(
            settings, self.handler, hooks=Hooks(observer=self.ledger), handle_signals=False, out=io.StringIO()
        )
        service = asyncio.create_task(runtime.run())
        await _started(runtime, service)
        started = time.monotonic()
        async with asyncio.TaskGroup() as group:
            sampler = group.create_task(self._sample(started))
            group.create_task(self._publish(runtime, ids))
            await self._wait_until_done(runtime, started)
            sampler.cancel()
        duration_s = time.monotonic() - started
        summary = await runtime.drain()
        runtime.stop()
        await asyncio.wait_for(service, 60)
        successes, deletions = self.ledger.as_counters(ids)
        async with create_client(kind="botocore") as client:
            report = check(ids, successes, await collect_state(client, url, dlq), deleted=deletions)
        return report, duration_s, summary

    async def _publish(self, runtime: Runtime, ids: Sequence[str]) -> None:
        """PUBLISHERS publish calls in flight at all times, so the number of tasks stays constant."""
        pending = iter(ids)

        async def publisher() -> None:
            for message_id in pending:
                await runtime.publisher.publish(body_for(message_id))

        async with asyncio.TaskGroup() as group:
            for _ in range(PUBLISHERS):
                group.create_task(publisher())

    async def _wait_until_done(self, runtime: Runtime, started: float) -> None:
        """Until every message was deleted, watched through the admin API's /status as an operator would."""
        async with httpx.AsyncClient(timeout=10) as client:
            while time.monotonic() - started < self.timeout_s:
                status = (await client.get(f"{runtime.admin_url}/status")).json()
                if status["pipeline"]["deleted"] >= self.messages and all(self.ledger.deletions):
                    return
                await asyncio.sleep(0.5)
        raise TimeoutError(f"not every message was handled within {self.timeout_s} s")

    async def _sample(self, started: float) -> None:
        while True:
            self.samples.append(
                Sample(
                    at_s=round(time.monotonic() - started, 2),
                    rss_mib=round(rss_mib(), 2),
                    tasks=len(asyncio.all_tasks()),
                    sockets=open_sockets(),
                    handled=self.ledger.handled_total,
                )
            )
            await asyncio.sleep(self.sample_s)


async def _started(runtime: Runtime, service: asyncio.Task[int]) -> None:
    """Wait until the service serves its admin API (it announces the URL once everything runs)."""
    deadline = time.monotonic() + 30
    while not runtime.admin_url:
        if service.done():
            service.result()
            raise RuntimeError("the service stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("the service did not start within 30 s")
        await asyncio.sleep(0.05)


def quartiles(samples: Sequence[Sample]) -> tuple[Sequence[Sample], Sequence[Sample]]:
    """The first and the last quarter of the samples taken after the warm-up."""
    steady = samples[int(len(samples) * WARM_UP_SHARE) :]
    quarter = max(1, len(steady) // 4)
    return steady[:quarter], steady[-quarter:]


def judge(
    report: Report, samples: Sequence[Sample], sockets_before: int, sockets_after: int, duration_s: float
) -> Verdict:
    """Every check of the soak, with the figures behind it."""
    verdict = Verdict()
    first, last = quartiles(samples)
    rss_first = statistics.mean(s.rss_mib for s in first)
    rss_last = statistics.mean(s.rss_mib for s in last)
    allowed_mib = max(RSS_GROWTH_FLOOR_MIB, RSS_GROWTH_LIMIT * rss_first)
    tasks_first, tasks_last = max(s.tasks for s in first), max(s.tasks for s in last)
    sockets_first, sockets_last = max(s.sockets for s in first), max(s.sockets for s in last)
    verdict.checks = {
        "nothing lost": report.lost == 0,
        "nothing deleted without success": report.deleted_without_success == 0,
        "every message handled": report.handled == report.published,
        "enough samples": len(samples) >= 8,
        "RSS flat": rss_last - rss_first <= allowed_mib,
        "no task leak": tasks_last <= tasks_first + TASK_SLACK,
        "no socket leak while running": sockets_last <= sockets_first + SOCKET_SLACK,
        "sockets closed after shutdown": sockets_after <= sockets_before + 1,
    }
    verdict.figures = {
        "messages": report.published,
        "duration_s": round(duration_s, 1),
        "messages_per_s": round(report.published / duration_s, 1),
        "duplicates": report.duplicates,
        "lost": report.lost,
        "deleted_without_success": report.deleted_without_success,
        "samples": len(samples),
        "rss_mib_first_quartile": round(rss_first, 1),
        "rss_mib_last_quartile": round(rss_last, 1),
        "rss_growth_allowed_mib": round(allowed_mib, 1),
        "tasks_max_first_quartile": tasks_first,
        "tasks_max_last_quartile": tasks_last,
        "sockets_max_first_quartile": sockets_first,
        "sockets_max_last_quartile": sockets_last,
        "sockets_before": sockets_before,
        "sockets_after": sockets_after,
    }
    return verdict


async def soak(args: argparse.Namespace) -> Verdict:
    """Run the soak against a fresh fauxqs."""
    async with fauxqs() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL_SQS=endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1",
        )
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        url, dlq = await create_queues()
        sockets_before = open_sockets()
        run = Soak(args.messages, args.concurrency, args.sample_s, args.timeout_s)
        report, duration_s, summary = await run.run(url, dlq)
        await asyncio.sleep(0.5)  # let closed connections finish closing
        verdict = judge(report, run.samples, sockets_before, open_sockets(), duration_s)
        verdict.figures["drain"] = summary["server"]
        verdict.samples = run.samples
        return verdict


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30_000, help="messages to publish and consume")
    parser.add_argument("--concurrency", type=int, default=50, help="MQ_CONCURRENCY of the service")
    parser.add_argument("--sample-s", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up after this long")
    parser.add_argument("--samples-out", default="", help="write every sample to this JSON file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; 0 when every check passed."""
    args = parse_args(argv)
    verdict = asyncio.run(soak(args))
    if args.samples_out:
        Path(args.samples_out).write_text(json.dumps([asdict(s) for s in verdict.samples]))
    print(json.dumps(verdict.figures, indent=2))
    for name, passed in verdict.checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    print("soak passed" if verdict.ok else "soak FAILED")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
