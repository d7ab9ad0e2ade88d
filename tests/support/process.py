"""`python -m service run` as a real process, with an HTTP client for its admin API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    pass


ROOT = Path(__file__).resolve().parents[2]


SERVICE_ENV = {
    "MQ_ADMIN_PORT": "0",
    "MQ_LOG_FORMAT": "json",
    "MQ_WAIT_TIME_SECONDS": "1",
    "MQ_DELETION_INTERVAL_S": "0.5",
    "MQ_CONCURRENCY": "2",
    "PYTHONPATH": str(ROOT),
}


@dataclass
class Process:
    process: asyncio.subprocess.Process
    client: httpx.AsyncClient
    stdout: str
    stderr_path: Path

    def log_events(self, message: str) -> list[dict[str, Any]]:
        """The JSON log lines with this message."""
        lines = self.stderr_path.read_text().splitlines()
        return [event for event in map(json.loads, lines) if event["message"] == message]

    async def status(self) -> dict[str, Any]:
        response = await self.client.get("/status")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    @property
    def admin_url(self) -> str:
        """The admin API's base URL, as the service printed it."""
        return str(self.client.base_url).rstrip("/")

    async def exit_code(self, timeout_s: float) -> int:
        """Wait for the process to exit."""
        return await asyncio.wait_for(self.process.wait(), timeout_s)


@asynccontextmanager
async def service_process(env: dict[str, str], stderr_path: Path) -> AsyncIterator[Process]:
    """Start `python -m service run`; yields once it printed its admin URL. Killed at the end if still running.

    Its log goes to `stderr_path` (appended: restarts may share one file).
    """
    with stderr_path.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "run", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        # Start-up imports take a few seconds on a quiet machine, many more on a busy one.
        banner = await asyncio.wait_for(read_banner(process), 60)
        admin_url = next(line.split()[2] for line in banner.splitlines() if "admin API:" in line)
        async with httpx.AsyncClient(base_url=admin_url, timeout=60) as client:
            yield Process(process, client, banner, stderr_path)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_banner(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("    curl "):
        line = await process.stdout.readline()
        assert line, "the service exited before printing its admin URL"
        lines.append(line.decode().rstrip("\n"))
    return "\n".join(lines)


def env_for(queue_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **SERVICE_ENV, "MQ_QUEUE_URL": queue_url, **extra}


async def publish(client: httpx.AsyncClient, count: int, route: str, body: object) -> None:
    response = await client.post("/publish", json={"messages": [{"route": route, "body": body}] * count})
    assert response.status_code == 200, response.text
