"""The Host allow-list: the admin API answers only requests addressed to a name it knows (against DNS rebinding).

A page on another site can make a browser resolve its own name to the pod's address; the browser then sends that
name as Host. Refusing unknown names (421) keeps such a page from reading anything. The default list holds the
loopback names and this machine's own name and addresses; MQ_ADMIN_ALLOWED_HOSTS replaces it (the chart sets the
pod's IP, which the kubelet's probes use, and the Service's names).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from service.app.admin.errors import error_response

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"

_log = logging.getLogger("service.admin")


def default_allowed_hosts(admin_host: str) -> list[str]:
    """Loopback names, the admin's bound address, and this machine's (the pod's) own name and addresses."""
    names = [*LOOPBACK_NAMES]
    if admin_host not in ("", "0.0.0.0", "::"):
        names.append(admin_host)
    hostname = socket.gethostname()
    names.append(hostname)
    with contextlib.suppress(OSError):  # a name that does not resolve: the loopback names still work
        names += [str(info[4][0]) for info in socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)]
    return list(dict.fromkeys(name.lower() for name in names))


class HostAllowList:
    """Names the admin API answers to: exact names and addresses, `.example.com` for its subdomains, `*` for any."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = {name.strip().lower().rstrip(".") for name in names if name.strip()}
        self._suffixes = tuple(name for name in self._names if name.startswith("."))

    def allows(self, host_header: str) -> bool:
        """True when the Host header (with or without a port) names an allowed host."""
        if ANY_HOST in self._names:
            return True
        host = _host_name(host_header)
        return bool(host) and (host in self._names or host.endswith(self._suffixes))


def _host_name(header: str) -> str:
    """'127.0.0.1:8080' -> '127.0.0.1', '[::1]:8080' -> '::1', 'Example.COM.' -> 'example.com'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header.rstrip(".")


class HostGuard:
    """ASGI middleware: a request whose Host is not allowed is answered 421 and goes no further."""

    def __init__(self, app: ASGIApp, *, allowed: HostAllowList) -> None:
        self._app = app
        self._allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Host header of an HTTP request, then pass it on."""
        if scope["type"] == "http":
            host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
            if not self._allowed.allows(host):
                _log.debug("refused a request for host %r (MQ_ADMIN_ALLOWED_HOSTS)", host)
                message = "the Host header names no host this admin API answers to (MQ_ADMIN_ALLOWED_HOSTS)"
                await error_response(421, message)(scope, receive, send)
                return
        await self._app(scope, receive, send)
