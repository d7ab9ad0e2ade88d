"""What a worker measures about itself: CPU (user + sys), wall time, peak RSS and the SQS calls it made."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ApiCalls:
    """Counts SQS API calls by operation, from botocore's `before-call.sqs` event or the lean client's `on_call`."""

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()

    def attach(self, client: Any) -> None:
        """Count every call `client` (boto3, aiobotocore or the lean client) makes from now on."""
        if hasattr(client, "on_call"):
            client.on_call(self.on_lean_call)
            return
        client.meta.events.register("before-call.sqs", self.on_call)  # a bound method: hashable, as botocore needs

    def on_lean_call(self, operation: str, params: Any) -> None:
        """The lean client's hook."""
        self.by_operation[operation] += 1

    def on_call(self, model: Any = None, **_: Any) -> None:
        """The event handler."""
        self.by_operation[getattr(model, "name", "unknown")] += 1

    def snapshot(self) -> dict[str, int]:
        """Counts so far, by operation."""
        return dict(self.by_operation)


@dataclass(frozen=True)
class Usage:
    """This process's CPU and the wall clock at one moment."""

    wall_s: float
    user_s: float
    sys_s: float

    @classmethod
    def now(cls) -> Usage:
        """Read the clocks."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(time.perf_counter(), usage.ru_utime, usage.ru_stime)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a worker's ru_maxrss starts at its
    parent's peak (the harness's), whereas VmHWM belongs to the worker's own address space.
    """
    peak = proc_peak_rss_mb(os.getpid())
    return peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_result(began: Usage, ended: Usage, *, messages: int, calls: dict[str, int], **extra: Any) -> dict[str, Any]:
    """The figures of one measured phase, as the harness reads them."""
    wall_s = ended.wall_s - began.wall_s
    cpu_s = (ended.user_s - began.user_s) + (ended.sys_s - began.sys_s)
    total_calls = sum(calls.values())
    return {
        "messages": messages,
        "wall_s": round(wall_s, 4),
        "cpu_s": round(cpu_s, 4),
        "cpu_user_s": round(ended.user_s - began.user_s, 4),
        "cpu_sys_s": round(ended.sys_s - began.sys_s, 4),
        "throughput": round(messages / wall_s, 1) if wall_s > 0 else 0.0,
        "cpu_us_per_msg": round(cpu_s / messages * 1e6, 1) if messages else None,
        "api_calls": calls,
        "api_calls_per_msg": round(total_calls / messages, 4) if messages else None,
        "rss_peak_mb": round(peak_rss_mb(), 1),
        **extra,
    }


def emit(result: dict[str, Any]) -> None:
    """Hand the result to the harness: one JSON line, the last line on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds another process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def proc_peak_rss_mb(pid: int) -> float:
    """Another process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
