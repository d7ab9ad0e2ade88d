"""The whole service in the test's event loop: uvicorn on a loopback port, the Server and Publisher on moto."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from handlers.example import router
from service import Handler, SyncHandler
from service.app.config import Settings
from service.app.consumers import QueueSpec
from service.app.runtime import Runtime
from service.telemetry.hooks import Hooks, HooksFactory
from tests.support.sqs import until

if TYPE_CHECKING:
    pass


BASE = Settings(admin_port=0, wait_time_seconds=1, deletion_interval_s=0.5, drain_timeout_s=1, concurrency=2)


@dataclass
class Running:
    """A Runtime serving its admin API on loopback, with an HTTP client for it."""

    runtime: Runtime
    client: httpx.AsyncClient
    exit_code: int | None = None


@asynccontextmanager
async def running(
    settings: Settings,
    *,
    handler: Handler | SyncHandler = router,
    hooks: Hooks | HooksFactory | None = None,
    queues: Sequence[QueueSpec] = (),
    max_in_flight: int | None = None,
) -> AsyncIterator[Running]:
    """Run the service until the block ends, then stop it as SIGTERM would and keep its exit code."""
    runtime = Runtime(
        settings,
        handler,
        hooks=hooks,
        handle_signals=False,
        out=io.StringIO(),
        queues=queues,
        max_in_flight=max_in_flight,
    )
    task = asyncio.create_task(runtime.run())
    await until(lambda: bool(runtime.admin_url) or task.done())
    if task.done():
        task.result()
    async with httpx.AsyncClient(base_url=runtime.admin_url, timeout=60) as client:
        service = Running(runtime, client)
        try:
            yield service
        finally:
            runtime.stop()
            service.exit_code = await asyncio.wait_for(task, 60)


async def publish(client: httpx.AsyncClient, *messages: Mapping[str, Any]) -> list[str]:
    response = await client.post("/publish", json={"messages": list(messages)})
    assert response.status_code == 200, response.text
    return [result["message_id"] for result in response.json()["results"]]


@asynccontextmanager
async def started(settings: Settings, handler: Handler | SyncHandler = router) -> AsyncIterator[Runtime]:
    """A Runtime whose Server and Publisher run, without its HTTP server or signals; drained at the end."""
    runtime = Runtime(settings, handler, handle_signals=False)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.drain()
