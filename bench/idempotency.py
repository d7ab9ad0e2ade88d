"""The idempotency guard in the consume worker: a redis-server of its own, and the time each guarded call adds.

The worker starts redis-server (Debian's package) on a free loopback port before the measured phase and stops
it by its PID afterwards; the server's CPU is not the worker's (like fauxqs', it is reported apart). Each
guarded call is timed around the handler (a claim before, a completed record after): with a no-op handler,
that is the latency the guard adds to every message.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from service import Message
from service.consumer.handler import Handler
from service.idempotency import idempotent
from service.idempotency.stores.redis import RedisStore

from .measure import proc_cpu_s


class GuardedHandler:
    """Starts redis-server, wraps the handler in the guard, times each guarded call."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.store: RedisStore | None = None
        self.durations_s: list[float] = []
        self._cpu_at_start = 0.0
        self.redis_cpu_s = 0.0

    def start(self) -> None:
        """Start redis-server and open the store."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench: redis-server is not installed (apt-get install redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        self.store = RedisStore(f"redis://127.0.0.1:{port}/0")
        self._cpu_at_start = proc_cpu_s(self.process.pid)

    def wrap(self, handler: Handler) -> Handler:
        """`handler` in the guard (key: the message id), timed."""
        assert self.store is not None
        guard = idempotent(handler, self.store)
        durations = self.durations_s

        async def timed(message: Message) -> None:
            began = time.perf_counter()
            await guard(message)
            durations.append(time.perf_counter() - began)

        return timed

    async def stop(self) -> None:
        """Close the store, stop redis-server by its PID."""
        if self.store is not None:
            await self.store.close()
        if self.process is not None:
            self.redis_cpu_s = proc_cpu_s(self.process.pid) - self._cpu_at_start
            self.process.terminate()
            self.process.wait(10)

    def figures(self) -> dict[str, Any]:
        """The guard's added latency per message (ms) and redis-server's CPU."""
        ordered = sorted(self.durations_s)
        if not ordered:
            return {}
        return {
            "calls": len(ordered),
            "added_ms_p50": round(statistics.median(ordered) * 1000, 3),
            "added_ms_p99": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            "redis_cpu_s": round(self.redis_cpu_s, 3),
        }


@asynccontextmanager
async def guarded(guard: GuardedHandler | None) -> AsyncIterator[None]:
    """Run the block with the guard's redis-server up (nothing when there is no guard)."""
    if guard is None:
        yield
        return
    guard.start()
    try:
        yield
    finally:
        await guard.stop()
