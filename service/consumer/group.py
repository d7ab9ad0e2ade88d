"""ServerGroup: several Servers started together and shut down together under one deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from service.aio.lifecycle import Lifecycle
from service.consumer.health import ShutdownSummary
from service.consumer.server import DEFAULT_SHUTDOWN_TIMEOUT_S, Server


class ServerGroup(Lifecycle):
    """Starts all its Servers; shuts them all down concurrently, so one deadline covers them all."""

    def __init__(self, servers: Iterable[Server]) -> None:
        self.servers = list(servers)

    async def start(self) -> None:
        """Start every Server; if one fails to start, shut down those that started and raise."""
        results = await asyncio.gather(*(server.start() for server in self.servers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.shutdown()
            raise errors[0]

    async def shutdown(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> list[ShutdownSummary]:
        """Shut every Server down at once; returns their summaries in order."""
        return list(await asyncio.gather(*(server.shutdown(timeout_s) for server in self.servers)))
