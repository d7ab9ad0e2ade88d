"""Scenarios run against the whole service (`python -m service run`): HTTP /publish under load, and /drain."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .backend import Fauxqs
from .scenarios import Scenario
from .service_proc import ServiceProcess

LOAD_DEADLINE_S = 120.0
MIN_REQUESTS_FOR_CPU = 1000
DRAIN_MESSAGES = 100  # 50 run, 10 wait in the prefetch (handed back by the drain), 40 stay in the queue
DRAIN_LEFT_S = (3.0, 5.0)  # the handlers' remaining time when they start: spread over this range
DRAIN_TIMEOUT_S = 30.0


def service_available() -> str | None:
    """None when `python -m service run` exists; else why the service scenarios are skipped."""
    try:
        import service.app.admin  # noqa: PLC0415
        import service.app.cli  # noqa: PLC0415
        import service.app.runtime  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"the service entry point is not there yet ({exc})"
    return None


def run_http_publish(backend: Fauxqs, scenario: Scenario, out_dir: Path) -> dict[str, Any]:
    """The service consumes an empty queue and publishes to another; a second process loads POST /publish."""
    consume_url, publish_url = backend.queue("http-consume"), backend.queue("http-publish")
    env = {**backend.environment(), "MQ_QUEUE_URL": consume_url, "MQ_PUBLISH_QUEUE_URL": publish_url}
    env.update(MQ_WAIT_TIME_SECONDS="20", MQ_LOG_LEVEL="WARNING")
    service = ServiceProcess(env, out_dir / "service-http-publish.log")
    try:
        service.start()
        cpu_before = service.cpu_s()
        command = [sys.executable, "-m", "bench.http_load", "--url", f"{service.admin_url}/publish"]
        command += ["--requests", str(scenario.messages), "--connections", str(scenario.notes["connections"])]
        command += ["--warmup", str(scenario.notes["warmup"]), "--deadline-s", str(LOAD_DEADLINE_S)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=LOAD_DEADLINE_S + 60)
        cpu_s = service.cpu_s() - cpu_before
        rss_mb = service.peak_rss_mb()
        published = backend.depth(publish_url)["visible"]
    finally:
        code = service.stop()
        backend.delete_queue(consume_url)
        backend.delete_queue(publish_url)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"load generator exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    ok = max(1, int(result.get("ok", 0)))
    if ok >= MIN_REQUESTS_FOR_CPU:  # /proc counts CPU in 10 ms ticks: meaningless over a few requests
        result["cpu_us_per_msg"] = round(cpu_s / (ok + scenario.notes["warmup"]) * 1e6, 1)  # warm-up included
    result.update(
        messages=result.get("ok", 0),
        cpu_s=round(cpu_s, 3),
        rss_peak_mb=round(rss_mb, 1),
        queue_depth_after=published,
        service_exit_code=code,
    )
    return result


def run_drain(backend: Fauxqs, scenario: Scenario, out_dir: Path) -> dict[str, Any]:
    """GET /drain while 50 handlers run, each with 3-5 s left; drain time against the longest time left."""
    queue_url = backend.queue("drain")
    started_log = out_dir / "drain-started.txt"
    started_log.unlink(missing_ok=True)
    concurrency = int(scenario.notes["concurrency"])
    env = {**backend.environment(), "MQ_QUEUE_URL": queue_url, "MQ_HANDLER": "bench.drain_handler:handler"}
    env.update(
        MQ_CONCURRENCY=str(concurrency),
        MQ_WAIT_TIME_SECONDS="20",
        MQ_DRAIN_TIMEOUT_S=str(DRAIN_TIMEOUT_S),
        MQ_LOG_LEVEL="WARNING",
        BENCH_DRAIN_LOG=str(started_log),
    )
    service = ServiceProcess(env, out_dir / "service-drain.log")
    try:
        service.start()
        low, high = DRAIN_LEFT_S
        now = time.time()
        spread = [low + (high - low) * i / (DRAIN_MESSAGES - 1) for i in range(DRAIN_MESSAGES)]
        backend.send_bodies(queue_url, [json.dumps({"until": now + left}) for left in spread])
        if not _wait_for_lines(started_log, concurrency, timeout_s=10.0):
            return {"error": f"fewer than {concurrency} handlers started within 10 s"}
        began = time.time()
        response = httpx.post(f"{service.admin_url}/drain", timeout=DRAIN_TIMEOUT_S + 30)
        drain_s = time.time() - began
        summary = response.json()
        depth = backend.depth(queue_url)
    finally:
        code = service.stop()
        backend.delete_queue(queue_url)
    untils = [float(line) for line in started_log.read_text().split()]
    longest_left_s = max(untils) - began
    return {
        "drain_s": round(drain_s, 3),
        "longest_left_s": round(longest_left_s, 3),
        "overhead_s": round(drain_s - longest_left_s, 3),
        "handlers_started": len(untils),
        "status": response.status_code,
        "summary": summary,
        "queue_after": depth,
        "service_exit_code": code,
    }


def _wait_for_lines(path: Path, count: int, *, timeout_s: float) -> bool:
    give_up_at = time.monotonic() + timeout_s
    while time.monotonic() < give_up_at:
        if path.exists() and len(path.read_text().split()) >= count:
            return True
        time.sleep(0.02)
    return False
