"""Sampling profiles of worker scenarios with py-spy, summarised by owner (which module spends the CPU).

Each sample is charged to the innermost frame that belongs to a known owner: a module of `service/`, the SQS
client stack (botocore, aiobotocore, aiohttp), the event loop (asyncio), anyio, OpenTelemetry, the benchmark
itself; standard-library frames in between (json, re, hashlib...) are charged to whoever called them. Only
samples taken while the event loop runs are kept, so imports and set-up do not count.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .backend import Fauxqs
from .scenarios import WORKER_DEADLINE_S, Scenario

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE_HZ = 250
TOP_FRAMES = 12
_OWNERS = (
    ("service/", None),
    ("aiobotocore/", "SQS client (aiobotocore)"),
    ("botocore/", "SQS client (botocore)"),
    ("aiohttp/", "SQS client (aiohttp)"),
    ("anyio/", "anyio (memory streams)"),
    ("opentelemetry/", "OpenTelemetry"),
    ("asyncio/", "asyncio event loop"),
    ("bench/", "benchmark harness"),
)


def py_spy() -> str | None:
    """The py-spy executable, if installed."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_scenario(backend: Fauxqs, scenario: Scenario, out_dir: Path) -> dict[str, Any]:
    """Run the scenario once under py-spy; the summary (owners and top frames, in % of kept samples)."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed"}
    raw_path = out_dir / f"profile-{scenario.name}.txt"
    queue_url = backend.queue(f"profile-{scenario.name}")
    try:
        if scenario.fill:
            backend.fill(queue_url, scenario.messages, keys=scenario.keys)
        worker = [sys.executable, "-m", scenario.worker, "--queue-url", queue_url]
        worker += ["--messages", str(scenario.messages), *scenario.args]
        command = [spy, "record", "--format", "raw", "--nolineno", "-r", str(SAMPLE_RATE_HZ), "-o", str(raw_path)]
        subprocess.run(
            [*command, "--", *worker],
            check=False,
            env=backend.environment(),
            capture_output=True,
            timeout=WORKER_DEADLINE_S + 60,
        )
    finally:
        backend.delete_queue(queue_url)
    if not raw_path.exists():
        return {"error": "py-spy wrote no profile (is ptrace allowed here?)"}
    return summarise(raw_path.read_text())


def summarise(raw: str) -> dict[str, Any]:
    """Owners (self time) and top frames (self and inclusive) of a py-spy raw profile."""
    owners: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for stack, count in _stacks(raw):
        if not any("run_forever" in frame for frame in stack):
            continue
        total += count
        owners[_owner(stack)] += count
        leaves[_short(stack[-1])] += count
        for frame in set(stack):
            if _path(frame).startswith("service/"):
                inclusive[_short(frame)] += count
    if total == 0:
        return {"error": "no samples"}
    return {
        "samples": total,
        "owners": _percent(owners, total, len(owners)),
        "top_self": _percent(leaves, total, TOP_FRAMES),
        "top_service_inclusive": _percent(inclusive, total, TOP_FRAMES),
    }


def _stacks(raw: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _owner(stack: list[str]) -> str:
    for frame in reversed(stack):
        path = _path(frame)
        for marker, name in _OWNERS:
            if path.startswith(marker) or f"/{marker}" in path:
                return name or "service/" + path.rsplit("service/", 1)[1]
    return "other (standard library, C)"


def _path(frame: str) -> str:
    """The file of a py-spy frame `function (path)`; py-spy already shortens it to the package's path."""
    return frame.rpartition(" (")[2].rstrip(")")


def _short(frame: str) -> str:
    """`function (path)` with the path cut to its package: `_dispatch (service/server.py)`."""
    name, _, path = frame.rpartition(" (")
    path = path.rstrip(")")
    for marker in ("/site-packages/", "/lib/python3.11/", f"{ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def _percent(counter: Counter[str], total: int, top: int) -> list[list[Any]]:
    return [[name, round(100 * count / total, 1)] for name, count in counter.most_common(top)]
