"""The HTTP load generator: POSTs {"body": ...} to /publish from its own process (one JSON line on stdout).

    python -m bench.http_load --url http://127.0.0.1:PORT/publish --requests N --connections C

`connections` closed-loop clients share the requests over keep-alive connections (aiohttp: cheap enough per
request that the generator, not the service, is never what limits the rate; its own CPU is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp

from .measure import emit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The generator's options."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200, help="requests sent first and not measured")
    parser.add_argument("--deadline-s", type=float, default=120.0)
    return parser.parse_args(argv)


async def load(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then send the measured requests; latency is per request, from send to the whole response."""
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await _phase(session, args.url, args.warmup, args.connections, args.deadline_s)
        began, cpu_before = time.perf_counter(), time.process_time()
        latencies, statuses = await _phase(session, args.url, args.requests, args.connections, args.deadline_s)
        wall_s = time.perf_counter() - began
        load_cpu_s = time.process_time() - cpu_before
    latencies.sort()
    ok = statuses.get(200, 0)
    return {
        "requests": len(latencies),
        "ok": ok,
        "completed": ok == args.requests,
        "statuses": {str(code): count for code, count in statuses.items()},
        "wall_s": round(wall_s, 4),
        "throughput": round(ok / wall_s, 1) if wall_s > 0 else 0.0,
        "p50_ms": round(_quantile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "connections": args.connections,
        "load_cpu_s": round(load_cpu_s, 3),
    }


async def _phase(
    session: aiohttp.ClientSession, url: str, requests: int, connections: int, deadline_s: float
) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    numbers = iter(range(requests))
    give_up_at = time.monotonic() + deadline_s

    async def user() -> None:
        for number in numbers:  # one shared iterator: each request is sent by exactly one client
            if time.monotonic() > give_up_at:
                return
            sent = time.perf_counter()
            async with session.post(url, json={"body": f"message {number}"}) as response:
                await response.read()
            latencies.append(time.perf_counter() - sent)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    await asyncio.gather(*(user() for _ in range(connections)))
    return latencies, statuses


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> None:
    """Run the load and print its figures."""
    emit(asyncio.run(load(parse_args(argv))))


if __name__ == "__main__":
    main()
