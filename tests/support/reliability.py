"""The reliability harness: the service with the recording handler, in this event loop or as a process."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from service import Handler, SyncHandler
from service.app.config import Settings
from service.telemetry.hooks import Hooks
from tests.reliability.invariants import id_of
from tests.support.process import Process
from tests.support.process import service_process as start_process
from tests.support.runtime import Running, running

if TYPE_CHECKING:
    pass


ROOT = Path(__file__).resolve().parents[2]


RECORD_HANDLER = "tests.reliability.record_handler:handle"


def running_service(
    settings: Settings, handler: Handler | SyncHandler, *, hooks: Hooks | None = None
) -> AbstractAsyncContextManager[Running]:
    """Run the service (Server, Publisher, admin API) until the block ends, then stop it as SIGTERM would."""
    return running(settings, handler=handler, hooks=hooks)


@dataclass
class ServiceProcess(Process):
    """`python -m service run` with the recording handler; `records` are the ids it handled, from its file."""

    record_file: Path = Path()

    def records(self) -> Counter[str]:
        """Every id the handler recorded as handled (with repeats), across restarts sharing the file."""
        return read_records(self.record_file)


def read_records(record_file: Path) -> Counter[str]:
    """The ids a record file holds, one per line (a last line cut by a kill is ignored)."""
    if not record_file.exists():
        return Counter()
    lines = record_file.read_text().split("\n")
    return Counter(id_of(line) for line in lines[:-1] if line)


def service_env(queue_url: str, record_file: Path, **extra: str) -> dict[str, str]:
    """The environment of a service process on `queue_url` with the recording handler."""
    return {
        **os.environ,
        "MQ_QUEUE_URL": queue_url,
        "MQ_HANDLER": RECORD_HANDLER,
        "MQ_ADMIN_PORT": "0",
        "MQ_LOG_FORMAT": "json",
        "MQ_LOG_LEVEL": "WARNING",
        "MQ_WAIT_TIME_SECONDS": "1",
        "RELIABILITY_RECORD_FILE": str(record_file),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@asynccontextmanager
async def service_process(env: dict[str, str], stderr_path: Path) -> AsyncIterator[ServiceProcess]:
    """Start the service process with the recording handler; yields once it printed its admin URL."""
    async with start_process(env, stderr_path) as started:
        record_file = Path(env["RELIABILITY_RECORD_FILE"])
        yield ServiceProcess(started.process, started.client, started.stdout, stderr_path, record_file)


async def get_json(url: str) -> tuple[int, Any]:
    """GET `url`; (status, JSON body)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
        return response.status_code, response.json()
