"""The admin API's listening socket and its HTTP server (uvicorn, without its signal handling)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from service.errors import ConfigError

ADMIN_SHUTDOWN_TIMEOUT_S = 5

_log = logging.getLogger("service.runtime")


class _AdminServer(uvicorn.Server):
    """uvicorn without its signal handling: the Runtime owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Capture nothing."""
        yield


async def serve_admin(app: ASGIApp, tasks: asyncio.TaskGroup, sock: socket.socket) -> uvicorn.Server:
    """Serve `app` on `sock` in a task of `tasks`; returns once it accepts requests."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=ADMIN_SHUTDOWN_TIMEOUT_S
    )
    admin = _AdminServer(config)
    serving = tasks.create_task(admin.serve(sockets=[sock]), name="mq-service admin")
    while not admin.started:  # uvicorn offers no event for this; start-up takes milliseconds
        if serving.done():
            raise RuntimeError("the admin API failed to start")
        await asyncio.sleep(0.01)
    return admin


def warn_if_open(host: str, *, token_set: bool) -> None:
    """Log a warning when the admin API listens beyond loopback without a token."""
    if token_set or _is_loopback(host):
        return
    _log.warning(
        "the admin API listens on %s without MQ_ADMIN_TOKEN: whoever reaches this address can publish, "
        "pause, drain and read dead-lettered messages; set MQ_ADMIN_TOKEN or bind 127.0.0.1",
        host,
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bind_admin(host: str, port: int) -> socket.socket:
    """The admin API's listening socket, bound before anything starts, so a taken port fails fast."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError("MQ_ADMIN_HOST/MQ_ADMIN_PORT", f"{host}:{port}", f"an address free to bind ({exc})") from exc
    return sock
